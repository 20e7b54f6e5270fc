"""benchmark.toml's [[providers]] tables: endpoints (OpenAI-compatible, or in the API their `api` names), their prices
and headers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
import re
from pathlib import Path
from typing import Mapping, Sequence

from .. import redaction
from ..errors import ConfigError
from ..pricing import Price
from .model import CustomEndpoint
from .toml_file import read_toml, toml_kind
from .urls import checked_base_url
from .values import checked_name

MAX_USD_PER_MILLION = 10_000  # a price in benchmark.toml: the dearest models cost a few hundred

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _price_from_table(table: Mapping[str, object], where: str) -> Price | None:
    if "input_price" not in table and "output_price" not in table:
        return None
    for key in ("input_price", "output_price"):
        if key not in table:
            raise ConfigError(f"{where}: give both input_price and output_price (missing {key})")
    as_of = table.get("price_as_of", "unknown")
    if not isinstance(as_of, (str, date)):
        raise ConfigError(f'{where}: price_as_of must be a date, like price_as_of = "2026-11-28", not '
                          f"{toml_kind(as_of)}")
    return Price(
        input=_usd_per_million(table, "input_price", where),
        output=_usd_per_million(table, "output_price", where),
        cached_input=_usd_per_million(table, "cached_input_price", where) if "cached_input_price" in table else None,
        as_of=str(as_of),
    )


def _usd_per_million(table: Mapping[str, object], key: str, where: str) -> Decimal:
    value = table[key]
    fix = f'{key} must be a number of USD per 1M tokens, 0 or more, like {key} = "0.10"'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: {fix}, not {toml_kind(value)}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: {fix}, not {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}: {fix}, not {value!r}")
    if amount > MAX_USD_PER_MILLION:  # a typo, or a cost no database column holds (1e400 was stored as inf)
        raise ConfigError(f"{where}: {key} must be at most {MAX_USD_PER_MILLION:,} USD per 1M tokens")
    return amount


def _toml_headers(table: Mapping[str, object], where: str) -> tuple[tuple[str, str], ...]:
    headers = table.get("headers", {})
    if not isinstance(headers, dict):
        raise ConfigError(f"{where}: headers must be a table of name = value")
    checked = []
    for name, value in headers.items():
        if not _HEADER_NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: header name {name!r} may hold only letters, digits and -")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: header {name} must be a string, not {toml_kind(value)}")
        text = str(value)
        redaction.register_header(name, text)
        # The value is not printed: headers often carry tokens.
        if not (text.isascii() and text.replace("\t", " ").isprintable()):
            raise ConfigError(f"{where}: header {name} must be plain ASCII text on one line")
        checked.append((name, text))
    return tuple(checked)


def load_custom_endpoints(path: Path, builtin_names: Sequence[str]) -> tuple[CustomEndpoint, ...]:
    """Read the [[providers]] tables of benchmark.toml."""
    data = read_toml(path)
    tables = data.get("providers", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: providers must be [[providers]] tables, not {toml_kind(tables)}")
    endpoints = []
    for index, table in enumerate(tables, start=1):
        where = f"{path} [[providers]] #{index}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        from .tables import ProviderTable, checked_table  # pydantic: only for a table to check, never at --help

        checked_table(ProviderTable, table, where)  # unknown keys and TOML types; what the values mean, below
        missing = [key for key in ("name", "base_url") if key not in table or table[key] == ""]
        if not table.get("model") and not table.get("models"):
            missing.append("model")
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} missing")
        if "model" in table and "models" in table:
            raise ConfigError(f"{where}: give model or models, not both")
        name = checked_name(table["name"], f"{where}: name")
        if not _NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits, - or _")
        if name in builtin_names or name in {e.name for e in endpoints}:
            raise ConfigError(f"{where}: name {name!r} is already taken")
        key_env = table.get("api_key_env")
        key_in = key_env if isinstance(key_env, str) and _VARIABLE_PATTERN.match(key_env) else "api_key_env's variable"
        base_url = checked_base_url(table["base_url"], f"{where}: base_url", key_in)
        if "models" in table:
            listed = table["models"]
            if not isinstance(listed, list) or not listed or not all(isinstance(m, str) and m for m in listed):
                raise ConfigError(f"{where}: models must be a list of model names, like [\"llama3.2\", \"qwen3\"], "
                                  f"not {toml_kind(listed)}")
            models = tuple(dict.fromkeys(checked_name(m, f"{where}: models") for m in listed))
        else:
            models = (checked_name(table["model"], f"{where}: model"),)
        api_key_env = None
        if "api_key_env" in table:
            api_key_env = table["api_key_env"]
            if not _VARIABLE_PATTERN.match(api_key_env):
                # Not printed: a key pasted here by mistake must not reach the console.
                raise ConfigError(f"{where}: api_key_env must name an environment variable (letters, digits and _), "
                                  "like VLLM_API_KEY, not hold the key itself")
        token_count = table.get("token_count", "usage")
        api = table.get("api", "chat_completions")
        endpoints.append(
            CustomEndpoint(
                name=name,
                base_url=base_url,
                models=models,
                api_key_env=api_key_env,
                price=_price_from_table(table, where),
                headers=_toml_headers(table, where),
                token_count=token_count,
                api=api,
            )
        )
    return tuple(endpoints)
