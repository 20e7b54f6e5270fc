"""load_settings: flags, the environment and benchmark.toml resolved into one run's Settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Mapping, Sequence

from ..errors import ConfigError
from ..textfile import MAX_PROMPT_BYTES
from ..workloads import Workload
from .apis import builtin_api, parse_api_overrides
from .endpoints import load_custom_endpoints
from .environment import parse_model_overrides, parse_provider_selection
from .model import ProviderSettings, Settings, Watching
from .toml_file import config_file
from .values import DEFAULT_MAX_COST_USD, DEFAULT_MAX_TOKENS, DEFAULT_RUN_NAME, DEFAULT_TIMEOUT_S, Secret
from .values import checked_name, is_utf8, prompt_too_big
from .watching import load_watching


def load_settings(
    *,
    prompt: str,
    builtin: Sequence[tuple[str, str]],
    environ: Mapping[str, str],
    provider_selection: str | None = None,
    model_overrides: Sequence[str] = (),
    api_overrides: Sequence[str] = (),
    config_path: str | None = None,
    max_tokens: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stream: bool = True,
    repeat: int = 1,
    retries: int = 0,
    simulate: bool = False,
    json_output: bool = False,
    run_name: str = DEFAULT_RUN_NAME,
    triggered_by: str = "cli",
    workload: Workload | None = None,
    dry_run: bool = False,
    max_cost_usd: Decimal = DEFAULT_MAX_COST_USD,
) -> Settings:
    """Resolve every provider's model, key, endpoint and price; `builtin` is [(name, default_model), ...]."""
    if not prompt.strip():
        raise ConfigError("the prompt is empty: give --prompt TEXT or --prompt-file PATH")
    if not is_utf8(prompt):
        raise ConfigError("the prompt is not UTF-8 text: check the terminal's encoding, or use --prompt-file PATH")
    if len(prompt.encode("utf-8")) > MAX_PROMPT_BYTES:
        raise prompt_too_big("the prompt", len(prompt.encode("utf-8")))
    checked_name(run_name, "--run-name")
    checked_name(triggered_by, "--triggered-by")
    builtin_names = [name for name, _ in builtin]
    toml_path = config_file(config_path, environ)
    custom = load_custom_endpoints(toml_path, builtin_names) if toml_path else ()
    watching = load_watching(toml_path, environ)

    known = builtin_names + [e.name for e in custom]
    selected = parse_provider_selection(provider_selection, known)
    overrides = parse_model_overrides(model_overrides, known)
    apis = parse_api_overrides(api_overrides, builtin_names, [e.name for e in custom])

    from .variables import STORAGE_VARIABLES, provider_variable, read_environment, unknown_variable_warnings

    chosen = [(name, default_model) for name, default_model in builtin if name in selected]
    endpoints = [endpoint for endpoint in custom if endpoint.name in selected]
    key_variables = [e.api_key_env for e in endpoints if e.api_key_env]
    # Only what this run reads, in the order it was always checked: each provider's models (unless --model gives
    # them) and base URL, then the keys, then storage and the run's host and region.
    variables = [provider_variable(name, suffix) for name, _ in chosen for suffix in ("_MODEL", "_BASE_URL", "_API")
                 if not (suffix == "_MODEL" and name in overrides)]
    variables += [provider_variable(name, "_API_KEY") for name, _ in chosen] + key_variables
    variables += [*STORAGE_VARIABLES, "BENCHMARK_HOST", "BENCHMARK_REGION"]
    env = read_environment(environ, variables, providers=builtin_names, key_variables=key_variables,
                           check_keys=not simulate)

    default_max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    common = dict(timeout_s=timeout_s, max_tokens=default_max_tokens, stream=stream, retries=retries)
    resolved: list[ProviderSettings] = []
    models: dict[str, tuple[str, ...]] = {}
    for name, default_model in chosen:
        models[name] = overrides.get(name) or env.value(provider_variable(name, "_MODEL")) or (default_model,)
        resolved.append(
            ProviderSettings(
                name=name,
                api_key=env.value(provider_variable(name, "_API_KEY")),
                key_env=provider_variable(name, "_API_KEY"),
                model_hint=f"set {provider_variable(name, '_MODEL')} or --model {name}=MODEL",
                base_url=env.value(provider_variable(name, "_BASE_URL")),
                api=builtin_api(name, env.value(provider_variable(name, "_API")), apis),
                **common,
            )
        )
    for endpoint in endpoints:
        models[endpoint.name] = overrides.get(endpoint.name) or endpoint.models
        resolved.append(
            ProviderSettings(
                name=endpoint.name,
                api_key=env.value(endpoint.api_key_env) if endpoint.api_key_env else Secret("not-needed"),
                key_env=endpoint.api_key_env,
                model_hint=f"change model for {endpoint.name!r} in benchmark.toml or use --model {endpoint.name}=MODEL",
                base_url=endpoint.base_url,
                headers=endpoint.headers,
                price=endpoint.price,
                token_count=endpoint.token_count,
                api=apis.get(endpoint.name, endpoint.api),
                **common,
            )
        )

    skipped = tuple(f"skipping {p.name}: set {p.key_env} in .env or the environment to measure it"
                    for p in resolved if p.api_key is None and not simulate)
    if not simulate:
        resolved = [p for p in resolved if p.api_key is not None]
    return Settings(
        prompt=prompt,
        providers=tuple(resolved),
        models=models,
        skipped=skipped,
        max_tokens=default_max_tokens,
        max_tokens_given=max_tokens is not None,
        timeout_s=timeout_s,
        stream=stream,
        repeat=repeat,
        retries=retries,
        simulate=simulate,
        json_output=json_output,
        run_name=run_name,
        triggered_by=triggered_by,
        **env.storage(),
        host=env.BENCHMARK_HOST,
        region=env.BENCHMARK_REGION,
        workload=workload,
        dry_run=dry_run,
        max_cost_usd=max_cost_usd,
        watching=watching,
        warnings=tuple(unknown_variable_warnings(environ)),
    )


def load_storage_settings(environ: Mapping[str, str], config_path: str | None = None, watching: bool = False,
                          notify: bool = False) -> Settings:
    """Settings that name only where results are stored (report, flush): the environment; with `watching`,
    benchmark.toml's [slo] and [alerts] too (report, watch), and with `notify` its notify URLs (watch)."""
    from .variables import STORAGE_VARIABLES, read_environment

    # The host as a run records it, so that `flush` can judge this host's runs left running.
    env = read_environment(environ, [*STORAGE_VARIABLES, "BENCHMARK_HOST"])
    watched = load_watching(config_file(config_path, environ), environ, notify) if watching else Watching()
    return Settings(prompt="", providers=(), models={}, host=env.BENCHMARK_HOST, watching=watched, **env.storage())
