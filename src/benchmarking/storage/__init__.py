"""Storage backends behind one interface, chosen from the settings; the outbox keeps what they cannot take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredAlert, StoredResult, StoredRun

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "GroupValues", "ResultFilters", "RunInfo", "SelectionSpan", "Storage", "StoredAlert", "StoredResult", "StoredRun",
    "open_backend", "DATABASE_TIMEOUT_S",
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

    path = url.removeprefix("sqlite:///") if url else ""
    return SQLiteStorage(path or "benchmarks.db", timeout_s)
