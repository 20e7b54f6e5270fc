"""The environment and .env: loading .env, provider and model selection, storage selection, unknown variables."""

from __future__ import annotations

import io
from pathlib import Path
import re
from typing import Mapping, Sequence

from .. import redaction
from ..errors import ConfigError
from .urls import checked_base_url, checked_database_url
from .values import Secret, checked_key, checked_name, read_utf8, yes_or_no

# Every BENCHMARK_* variable the tool reads; any other one set in the environment gets a warning (likely a typo).
KNOWN_BENCHMARK_VARIABLES = frozenset(
    {
        "BENCHMARK_CONFIG",
        "BENCHMARK_HOST",
        "BENCHMARK_REGION",
        "BENCHMARK_OUTBOX",
        "BENCHMARK_NO_MIGRATE",
        # The test suite's: set in CI (.ci/run), so that the tests needing them fail instead of skipping.
        "BENCHMARK_REQUIRE_POSTGRES",
        "BENCHMARK_REQUIRE_RAY",
        "BENCHMARK_REQUIRE_CHROMIUM",
        "BENCHMARK_REQUIRE_PROMETHEUS",
        "BENCHMARK_REQUIRE_TMPFS",
        "BENCHMARK_NOTIFY",
    }
)


def load_dotenv_file(path: str | Path = ".env") -> None:
    """Load .env into the environment; variables already set win, as users expect from a shell."""
    from dotenv import load_dotenv

    path = Path(path)
    if not path.is_file():
        return
    load_dotenv(stream=io.StringIO(read_utf8(path, "the file")), override=False)


def parse_model_overrides(items: Sequence[str], known: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """`--model provider=model`, repeatable: every model given for a provider is measured, in order."""
    overrides: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, model = item.partition("=")
        if not sep or not name or not model:
            raise ConfigError(f"--model takes provider=model, not {item!r}")
        if name not in known:
            raise ConfigError(f"--model: unknown provider {name!r}; known: {', '.join(known)}")
        model = checked_name(model, f"--model {name}=MODEL: the model name")
        if model not in overrides.get(name, ()):
            overrides[name] = overrides.get(name, ()) + (model,)
    return overrides


def model_list(text: str, variable: str) -> tuple[str, ...]:
    """`OPENAI_MODEL=gpt-4o-mini,gpt-4.1-nano`: one or several models, in order."""
    models = tuple(dict.fromkeys(checked_name(m.strip(), variable) for m in text.split(",") if m.strip()))
    if not models:
        raise ConfigError(f"{variable} names no model")
    return models


def parse_provider_selection(text: str | None, known: Sequence[str]) -> list[str]:
    """`--providers openai,groq`: a subset, in the order of the PROVIDERS list."""
    if text is None:
        return list(known)
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not chosen:
        raise ConfigError("--providers needs at least one name; known: " + ", ".join(known))
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ConfigError(f"unknown provider {unknown[0]!r}; known: {', '.join(known)}")
    return [name for name in known if name in chosen]


def unknown_benchmark_variables(environ: Mapping[str, str]) -> list[str]:
    return sorted(k for k in environ if k.startswith("BENCHMARK_") and k not in KNOWN_BENCHMARK_VARIABLES)


def storage_settings(environ: Mapping[str, str]) -> dict[str, object]:
    """Where results go: SUPABASE_URL + SUPABASE_SERVICE_ROLE, else DATABASE_URL, else ./benchmarks.db."""
    supabase_url = environ.get("SUPABASE_URL") or None
    role = environ.get("SUPABASE_SERVICE_ROLE") or None
    database_url = environ.get("DATABASE_URL") or None
    redaction.register(role)
    redaction.register_database_url(database_url or "")
    if supabase_url and not role:
        raise ConfigError("SUPABASE_URL is set but SUPABASE_SERVICE_ROLE is not: set the project's service-role key")
    if role and not supabase_url:
        raise ConfigError("SUPABASE_SERVICE_ROLE is set but SUPABASE_URL is not: set the project's URL")
    if supabase_url and not supabase_url.startswith(("https://", "http://")):
        raise ConfigError("SUPABASE_URL must be the project's URL, like https://your-project.supabase.co")
    if supabase_url and role:
        checked_base_url(supabase_url, "SUPABASE_URL", "SUPABASE_SERVICE_ROLE")
        checked_key(role, "SUPABASE_SERVICE_ROLE")
    if database_url and not database_url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        scheme, colon, _ = database_url.partition(":")
        # Only a scheme is named: the rest (a key=value string, a typo'd URL) may hold the password.
        named = f", not {scheme!r}" if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,20}", scheme) else (
            " (a key=value connection string is not read: write it as a URL)")
        raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql://{named}")
    return {
        "database_url": checked_database_url(database_url) if database_url else None,
        "supabase_url": supabase_url,
        "supabase_service_role": Secret(role) if role else None,
        "outbox_dir": environ.get("BENCHMARK_OUTBOX") or "outbox",
        "migrate": not yes_or_no(environ.get("BENCHMARK_NO_MIGRATE", ""), "BENCHMARK_NO_MIGRATE"),
    }
