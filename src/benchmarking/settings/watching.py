"""benchmark.toml's [slo], [alerts] and [notify], and BENCHMARK_NOTIFY: what watching reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

from .. import redaction
from ..durations import parse_duration
from ..errors import ConfigError
from ..slo import SloConfig, Targets
from .model import ALERT_RULES, AlertRules, Watching
from .toml_file import read_toml, toml_kind, toml_number, toml_table, unknown_key
from .values import Secret

# [slo] keys: the per-request targets, the window's success rate, and the percentile a window is judged by.
SLO_KEYS = ("ttft_ms", "latency_ms", "tokens_per_second", "success_rate", "percentile")
ALERT_KEYS = ("rules", "consecutive_failures", "window", "baseline", "regression_threshold")
# The outage rule reads this many newest results of each provider and model at every evaluation: a bound keeps that
# read small (and the number within what a database's LIMIT takes).
MAX_CONSECUTIVE_FAILURES = 10_000


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
    values: dict[str, object] = {}
    for key, value in table.items():
        what = f"{where}: {key}"
        if key not in SLO_KEYS:
            raise unknown_key(key, SLO_KEYS, where)
        if key == "percentile":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
                raise ConfigError(f"{what} must be a whole number from 1 to 99, like percentile = 90, not {value!r}")
            values[key] = value
        elif key == "success_rate":
            number = toml_number(value, what, "success_rate = 0.99")
            if not 0 <= number <= 1:
                raise ConfigError(f"{what} is a fraction from 0 to 1, like success_rate = 0.99, not {value!r}")
            values[key] = number
        else:
            number = toml_number(value, what, f"{key} = 800")
            if number <= 0:
                raise ConfigError(f"{what} must be more than 0, not {value!r}")
            values[key] = number
    return replace(base, **values)


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
    where = f"{where} [alerts]"
    rules = AlertRules()
    for key, value in table.items():
        what = f"{where}: {key}"
        if key not in ALERT_KEYS:
            raise unknown_key(key, ALERT_KEYS, where)
        if key == "rules":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f'{what} must be a list of rule names, like rules = ["outage", "slo_breach"]')
            unknown = [v for v in value if v not in ALERT_RULES]
            if unknown:
                raise ConfigError(f"{what}: unknown rule {unknown[0]!r}; rules: {', '.join(ALERT_RULES)}")
            rules = replace(rules, rules=tuple(dict.fromkeys(value)))
        elif key == "consecutive_failures":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONSECUTIVE_FAILURES:
                raise ConfigError(
                    f"{what} must be a whole number from 1 to {MAX_CONSECUTIVE_FAILURES:,}, not {value!r}")
            rules = replace(rules, consecutive_failures=value)
        elif key in ("window", "baseline"):
            if not isinstance(value, str):
                raise ConfigError(f'{what} must be a duration in quotes, like {key} = "1h", not {toml_kind(value)}')
            rules = replace(rules, **{f"{key}_s": parse_duration(value, what)})
        else:
            number = toml_number(value, what, "regression_threshold = 0.2")
            if number <= 0:
                raise ConfigError(f"{what} is a fraction more than 0, like 0.2 for 20 %, not {value!r}")
            rules = replace(rules, regression_threshold=number)
    return rules


def _notify_urls(table: Mapping[str, object], where: str, environ: Mapping[str, str]) -> tuple[Secret, ...]:
    """BENCHMARK_NOTIFY if set (split as notify_env.py says), else [notify] urls; each checked by Apprise itself."""
    from ..notify_env import environment_urls

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
        from ..notify import check_url

        for index, url in enumerate(urls, start=1):
            check_url(url, f"{source}: URL {index} of {len(urls)}")
    return tuple(Secret(u) for u in dict.fromkeys(urls))
