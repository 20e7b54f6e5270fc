"""load_settings: flags, the environment and benchmark.toml resolved into one run's Settings."""

from __future__ import annotations

from decimal import Decimal
import socket
from typing import Mapping, Sequence

from ..errors import ConfigError
from ..textfile import MAX_PROMPT_BYTES
from ..workloads import Workload
from .apis import builtin_api, parse_api_overrides
from .endpoints import load_custom_endpoints
from .environment import model_list, parse_model_overrides, parse_provider_selection, storage_settings
from .environment import unknown_benchmark_variables
from .model import ProviderSettings, Settings
from .toml_file import config_file
from .urls import checked_base_url
from .values import DEFAULT_MAX_COST_USD, DEFAULT_MAX_TOKENS, DEFAULT_RUN_NAME, DEFAULT_TIMEOUT_S, Secret
from .values import checked_key, checked_name, is_utf8, prompt_too_big
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
    warnings = [f"unknown variable {k} is set and ignored (a typo?)" for k in unknown_benchmark_variables(environ)]

    builtin_names = [name for name, _ in builtin]
    toml_path = config_file(config_path, environ)
    custom = load_custom_endpoints(toml_path, builtin_names) if toml_path else ()
    watching = load_watching(toml_path, environ)

    known = builtin_names + [e.name for e in custom]
    selected = parse_provider_selection(provider_selection, known)
    overrides = parse_model_overrides(model_overrides, known)
    apis = parse_api_overrides(api_overrides, builtin_names, [e.name for e in custom])

    default_max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    common = dict(timeout_s=timeout_s, max_tokens=default_max_tokens, stream=stream, retries=retries)
    resolved: list[ProviderSettings] = []
    models: dict[str, tuple[str, ...]] = {}
    skipped: list[str] = []
    for name, default_model in builtin:
        if name not in selected:
            continue
        upper = name.upper()
        models[name] = overrides.get(name) or model_list(environ.get(f"{upper}_MODEL") or default_model,
                                                         f"{upper}_MODEL")
        key = environ.get(f"{upper}_API_KEY")
        base_url = environ.get(f"{upper}_BASE_URL") or None
        resolved.append(
            ProviderSettings(
                name=name,
                api_key=Secret(key) if key else None,
                key_env=f"{upper}_API_KEY",
                model_hint=f"set {upper}_MODEL or --model {name}=MODEL",
                base_url=checked_base_url(base_url, f"{upper}_BASE_URL", f"{upper}_API_KEY") if base_url else None,
                api=builtin_api(name, environ, apis),
                **common,
            )
        )
    for endpoint in custom:
        if endpoint.name not in selected:
            continue
        models[endpoint.name] = overrides.get(endpoint.name) or endpoint.models
        key = environ.get(endpoint.api_key_env) if endpoint.api_key_env else "not-needed"
        resolved.append(
            ProviderSettings(
                name=endpoint.name,
                api_key=Secret(key) if key else None,
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

    if not simulate:
        for p in resolved:
            if p.api_key is not None and p.key_env:
                checked_key(p.api_key.reveal(), p.key_env)
            if p.api_key is None:
                skipped.append(f"skipping {p.name}: set {p.key_env} in .env or the environment to measure it")
        resolved = [p for p in resolved if p.api_key is not None]

    storage = storage_settings(environ)
    return Settings(
        prompt=prompt,
        providers=tuple(resolved),
        models=models,
        skipped=tuple(skipped),
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
        **storage,
        host=checked_name(environ.get("BENCHMARK_HOST") or socket.gethostname(), "BENCHMARK_HOST"),
        region=checked_name(environ["BENCHMARK_REGION"], "BENCHMARK_REGION") if environ.get("BENCHMARK_REGION")
        else None,
        workload=workload,
        dry_run=dry_run,
        max_cost_usd=max_cost_usd,
        watching=watching,
        warnings=tuple(warnings),
    )
