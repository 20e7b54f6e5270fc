"""benchmark.toml's [slo], [alerts] and [notify], and BENCHMARK_NOTIFY: what watching reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

from .. import redaction
from ..errors import ConfigError
from ..slo import SloConfig, Targets
from .model import AlertRules, Watching
from .toml_file import read_toml, toml_table, unknown_key
from .values import Secret


def load_watching(path: Path | None, environ: Mapping[str, str], notify: bool = True) -> Watching:
    """[slo], [alerts] and [notify] of benchmark.toml, and BENCHMARK_NOTIFY, checked (notify=False: the URLs are
    not read, for commands that send nothing)."""
    data = read_toml(path) if path is not None else {}
    where = str(path)
    return Watching(
        slo=_slo_config(toml_table(data, "slo", where), where),
        alerts=_alert_rules(toml_table(data, "alerts", where), where),
        notify_urls=_notify_urls(toml_table(data, "notify", where), where, environ) if notify else (),
    )


def _targets(table: Mapping[str, object], where: str, base: Targets) -> Targets:
    """One [slo] table's targets; keys it leaves out keep `base`'s values."""
    if not table:
        return base
    from .tables import SloTable, checked_table  # pydantic: only for a table to check, never at --help

    return replace(base, **checked_table(SloTable, table, where))


def _slo_config(table: Mapping[str, object], where: str) -> SloConfig:
    """[slo] defaults and its [slo."provider/model"] overrides, each override complete (defaults filled in)."""
    plain = {key: value for key, value in table.items() if not isinstance(value, dict)}
    defaults = _targets(plain, f"{where} [slo]", Targets())
    overrides = {}
    for key, value in table.items():
        if not isinstance(value, dict):
            continue
        provider, slash, model = key.partition("/")
        if not (provider and slash and model):
            raise ConfigError(f'{where} [slo.{key}]: an override is named "provider/model", like '
                              '[slo."openai/gpt-4o-mini"]')
        overrides[key] = _targets(value, f'{where} [slo."{key}"]', defaults)
    return SloConfig(defaults=defaults, overrides=overrides)


def _alert_rules(table: Mapping[str, object], where: str) -> AlertRules:
    if not table:
        return AlertRules()
    from .tables import AlertsTable, checked_table  # pydantic: only for a table to check, never at --help

    where = f"{where} [alerts]"
    rules = AlertRules()
    for key, value in checked_table(AlertsTable, table, where).items():
        if key == "rules":
            rules = replace(rules, rules=tuple(dict.fromkeys(value)))
        elif key in ("window", "baseline"):
            rules = replace(rules, **{f"{key}_s": value})  # in seconds
        else:
            rules = replace(rules, **{key: value})
    return rules


def _notify_urls(table: Mapping[str, object], where: str, environ: Mapping[str, str]) -> tuple[Secret, ...]:
    """BENCHMARK_NOTIFY if set (split as notify_urls.py says), else [notify] urls; each checked by Apprise itself."""
    from .notify_urls import environment_urls

    for key in table:
        if key != "urls":
            raise unknown_key(key, ("urls",), f"{where} [notify]")
    from_environment = environment_urls(environ)
    if from_environment is not None:
        source, urls = "BENCHMARK_NOTIFY", from_environment
    else:
        source = f"{where} [notify] urls"
        urls = table.get("urls", [])
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(f'{source} must be a list of Apprise URLs in quotes, like urls = ["ntfy://topic"]')
    for url in urls:
        redaction.register(url)
    if urls:
        from .notify_urls import check_url

        for index, url in enumerate(urls, start=1):
            check_url(url, f"{source}: URL {index} of {len(urls)}")
    return tuple(Secret(u) for u in dict.fromkeys(urls))
