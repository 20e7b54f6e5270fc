"""benchmark.toml's [[providers]] tables: endpoints (OpenAI-compatible, or in the API their `api` names), their prices
and headers."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from .model import CustomEndpoint
from .toml_file import read_toml, toml_kind


def load_custom_endpoints(path: Path, builtin_names: Sequence[str]) -> tuple[CustomEndpoint, ...]:
    """Read the [[providers]] tables of benchmark.toml, each checked by tables.ProviderTable."""
    from .tables import ProviderTable, validated  # pydantic: only for a file to check, never at --help

    data = read_toml(path)
    tables = data.get("providers", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: providers must be [[providers]] tables, not {toml_kind(tables)}")
    endpoints: list[CustomEndpoint] = []
    for index, table in enumerate(tables, start=1):
        where = f"{path} [[providers]] #{index}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        entry = validated(ProviderTable, table, where)
        assert isinstance(entry, ProviderTable)
        if entry.name in builtin_names or entry.name in {e.name for e in endpoints}:
            raise ConfigError(f"{where}: name {entry.name!r} is already taken")
        endpoints.append(
            CustomEndpoint(
                name=str(entry.name),
                base_url=str(entry.base_url),
                models=entry.models or (str(entry.model),),
                api_key_env=entry.api_key_env,
                price=entry.price(),
                headers=entry.headers or (),
                token_count=entry.token_count or "usage",
                api=entry.api or "chat_completions",
            )
        )
    return tuple(endpoints)
