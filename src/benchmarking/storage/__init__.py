"""Storage backends behind one interface, chosen from the environment."""

from __future__ import annotations

from .base import RunInfo, Storage, StoredResult, StoredRun

__all__ = ["RunInfo", "Storage", "StoredResult", "StoredRun", "open_storage"]


def open_storage(database_url: str | None, supabase_url: str | None = None) -> Storage:
    """Open the backend the settings select: Supabase, then DATABASE_URL, then ./benchmarks.db."""
    from ..errors import ConfigError

    if supabase_url:
        raise ConfigError("the Supabase backend is not built yet: unset SUPABASE_URL to use SQLite")
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("the PostgreSQL backend is not built yet: unset DATABASE_URL to use SQLite")
    from .sqlite import SQLiteStorage

    if not database_url:
        return SQLiteStorage("benchmarks.db")
    if database_url.startswith("sqlite:///"):
        return SQLiteStorage(database_url.removeprefix("sqlite:///") or "benchmarks.db")
    raise ConfigError(
        f"DATABASE_URL must start with sqlite:/// or postgresql://, not {database_url.split(':', 1)[0]!r}"
    )
