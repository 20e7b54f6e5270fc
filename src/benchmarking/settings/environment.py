"""The environment and .env: loading .env, the provider and model flags, storage selection (variables.py checks
the variables themselves)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import ConfigError
from ..textfile import BOM
from .values import checked_name, read_utf8


def load_dotenv_file(path: str | Path = ".env") -> None:
    """Load .env into the environment; variables already set win, as users expect from a shell.

    No .env is fine; a .env that is there but is not a regular file (a directory, a FIFO, a device, a link to
    nothing) is the user's mistake and one line, never opened; a NUL byte, which no variable can hold, is one line
    naming the line, not an error from the environment."""
    from dotenv import dotenv_values

    path = Path(path)
    if not os.path.lexists(path):
        return
    if not path.exists():
        raise ConfigError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist: fix or remove it")
    text = read_utf8(path, "the file").removeprefix(BOM)
    for number, line in enumerate(text.split("\n"), 1):
        if "\0" in line:
            raise ConfigError(f"{path} line {number} holds a NUL byte, which no variable can hold: remove it")
    for name, value in dotenv_values(stream=io.StringIO(text)).items():
        if value is not None and "\0" not in name + value:
            os.environ.setdefault(name, value)


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


def storage_settings(environ: Mapping[str, str]) -> dict[str, object]:
    """Where results go: SUPABASE_URL + SUPABASE_SERVICE_ROLE, else DATABASE_URL, else ./benchmarks.db (the
    Settings fields, checked by the environment's schema)."""
    from .variables import STORAGE_VARIABLES, read_environment  # pydantic: only where settings are read

    return read_environment(environ, STORAGE_VARIABLES).storage()
