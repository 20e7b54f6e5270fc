"""Which API each provider speaks: OPENAI_API (<PROVIDER>_API), `--api provider=api`, benchmark.toml's `api = ...`."""

from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import ConfigError

# Every API by the name rows store in `api` (providers/dialects/ has a module for each, under the same name).
APIS = ("chat_completions", "responses", "messages", "generate_content")

# The APIs each built-in provider speaks, its default first. A provider not listed speaks Chat Completions only;
# an endpoint of benchmark.toml speaks any of APIS.
PROVIDER_APIS: dict[str, tuple[str, ...]] = {
    "openai": ("chat_completions", "responses"),
    "anthropic": ("messages",),
    "gemini": ("generate_content",),
}


def apis_of(provider: str) -> tuple[str, ...]:
    return PROVIDER_APIS.get(provider, ("chat_completions",))


def checked_api(value: str, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def parse_api_overrides(items: Sequence[str], builtin: Sequence[str], custom: Sequence[str]) -> dict[str, str]:
    """`--api provider=api`, repeatable: for a built-in provider that speaks several APIs, or an endpoint of
    benchmark.toml."""
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, api = item.partition("=")
        if not sep or not name or not api:
            raise ConfigError(f"--api takes provider=api, like --api openai=responses, not {item!r}")
        if name in builtin:
            allowed = apis_of(name)
            if len(allowed) == 1 and api != allowed[0]:
                raise ConfigError(f"--api {name}=...: {name} speaks one API ({allowed[0]}); --api chooses for "
                                  f"{', '.join(p for p in builtin if len(apis_of(p)) > 1)} and benchmark.toml's "
                                  "endpoints")
        elif name in custom:
            allowed = APIS
        else:
            raise ConfigError(f"--api: unknown provider {name!r}; known: {', '.join([*builtin, *custom])}")
        overrides[name] = checked_api(api, allowed, f"--api {name}=API: API")
    return overrides


def builtin_api(name: str, variable: str | None, overrides: Mapping[str, str]) -> str | None:
    """The API a built-in provider speaks: --api, else <PROVIDER>_API (`variable`, checked by settings/variables.py),
    else its default; None where it speaks one (its module knows which)."""
    allowed = apis_of(name)
    if len(allowed) == 1:
        return None
    return overrides.get(name) or variable or allowed[0]
