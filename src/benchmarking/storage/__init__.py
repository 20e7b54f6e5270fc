"""Storage backends behind one interface, chosen from the settings; the outbox keeps what they cannot take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    BucketMedians, GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredAlert, StoredResult, StoredRun,
)

if TYPE_CHECKING:
    from ..settings.model import Settings

__all__ = [
    "BucketMedians", "GroupValues", "ResultFilters", "RunInfo", "SelectionSpan", "Storage", "StoredAlert", "StoredResult",
    "StoredRun", "open_backend", "sqlite_path", "DATABASE_TIMEOUT_S",
]

DATABASE_TIMEOUT_S = 10.0


def open_backend(settings: "Settings", timeout_s: float = DATABASE_TIMEOUT_S) -> Storage:
    """The backend the settings select: Supabase, then DATABASE_URL, then ./benchmarks.db. Connects lazily."""
    if settings.supabase_url and settings.supabase_service_role:
        from .supabase import SupabaseStorage

        return SupabaseStorage(settings.supabase_url, settings.supabase_service_role, timeout_s)
    url = settings.database_url
    if url and url.startswith(("postgres://", "postgresql://")):
        from .postgres import PostgresStorage

        return PostgresStorage(url, timeout_s, migrate=settings.migrate)
    from .sqlite import SQLiteStorage

    path = sqlite_path(settings)
    assert path is not None
    return SQLiteStorage(path, timeout_s)


def sqlite_path(settings: "Settings") -> str | None:
    """The SQLite file the settings select, or None when they select Supabase or PostgreSQL."""
    url = settings.database_url
    if (settings.supabase_url and settings.supabase_service_role) or (
            url and url.startswith(("postgres://", "postgresql://"))):
        return None
    return (url.removeprefix("sqlite:///") if url else "") or "benchmarks.db"
