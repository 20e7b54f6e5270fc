"""The environment and .env as one pydantic schema: every variable the tool reads, by its own name, checked at once.

Each field is named as its variable is, so a message names the variable; a refusal is one line (refusal.refused),
and a key, a password or a token is never in it. Empty is the same as unset, as it always was. Imported only where
settings are read (pydantic costs `--help` time).
"""

from __future__ import annotations

import difflib
from functools import lru_cache, partial
import socket
from typing import Annotated, Any, Mapping, Sequence

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, create_model, model_validator

from ..errors import ConfigError
from .apis import apis_of, checked_api
from .refusal import checked, refusal, subject, validated
from .urls import checked_base_url, checked_database_url
from .values import Secret, checked_key, checked_name, yes_or_no


def _secret(value: str, info: ValidationInfo, always: bool = False) -> Secret:
    """A key: from here on no output shows it; checked to fit an HTTP header. A provider's key is not checked when
    the run is simulated (the simulator gets a stand-in key instead); `always`: the database's key is."""
    secret = Secret(value)
    if always or (info.context or {}).get("check_keys", True):
        try:
            checked_key(value, subject(info))
        except ConfigError as exc:
            raise refusal(str(exc)) from None
    return secret


def _models(text: str, variable: str) -> tuple[str, ...]:
    """`OPENAI_MODEL=gpt-4o-mini,gpt-4.1-nano`: one or several models, in order."""
    models = tuple(dict.fromkeys(checked_name(m.strip(), variable) for m in text.split(",") if m.strip()))
    if not models:
        raise ConfigError(f"{variable} names no model")
    return models


def _base_url(url: str, variable: str) -> str:
    """A provider's <NAME>_BASE_URL; the key goes in its <NAME>_API_KEY, never in the URL."""
    return checked_base_url(url, variable, variable.removesuffix("_BASE_URL") + "_API_KEY")


def _project_url(url: str, variable: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{variable} must be the project's URL, like https://your-project.supabase.co")
    return checked_base_url(url, variable, "SUPABASE_SERVICE_ROLE")


Key = Annotated[Secret, BeforeValidator(_secret)]
def _api(value: str, variable: str) -> str:
    """OPENAI_API=responses: the API of a provider that speaks several; refused for one that speaks one."""
    name = variable.removesuffix("_API").lower()
    allowed = apis_of(name)
    if len(allowed) == 1 and value != allowed[0]:
        raise ConfigError(f"{variable} is set, but {name} speaks one API ({allowed[0]}): unset it")
    return checked_api(value, allowed, variable)


DatabaseKey = Annotated[Secret, BeforeValidator(partial(_secret, always=True))]
Models = Annotated[tuple[str, ...], checked(_models, before=True)]
BaseUrl = Annotated[str, checked(_base_url)]
Api = Annotated[str, checked(_api)]
Name = Annotated[str, checked(checked_name)]  # stored: at most 200 characters of UTF-8 text
YesOrNo = Annotated[bool, checked(yes_or_no, before=True)]  # 1/true/yes, 0/false/no, any case

# Each provider's own variables, <NAME> being its name in PROVIDERS in capitals: a variable every provider reads is
# one line here, and a provider added to PROVIDERS reads all of them with no line of its own.
PROVIDER_VARIABLES: dict[str, Any] = {
    "_API_KEY": Key,  # the provider's key; no key: the provider is skipped, saying which variable to set
    "_MODEL": Models,  # the models measured, comma-separated; --model wins
    "_BASE_URL": BaseUrl,  # another endpoint speaking the provider's API (a proxy, the simulator)
    "_API": Api,  # the API measured, for a provider that speaks several (OPENAI_API=responses); --api wins
}
# Set by the test suite (and CI) for itself, never read by the tool: known, so that they draw no warning.
TEST_SUITE_VARIABLES = ("BENCHMARK_REQUIRE_POSTGRES", "BENCHMARK_REQUIRE_RAY", "BENCHMARK_REQUIRE_CHROMIUM",
                        "BENCHMARK_REQUIRE_PROMETHEUS", "BENCHMARK_REQUIRE_TMPFS")
STORAGE_VARIABLES = ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE", "BENCHMARK_OUTBOX",
                     "BENCHMARK_NO_MIGRATE")


class Environment(BaseModel):
    """The variables every command may read; environment_schema() adds each provider's."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    # Where results go: SUPABASE_URL + SUPABASE_SERVICE_ROLE, else DATABASE_URL, else ./benchmarks.db.
    DATABASE_URL: Annotated[str, checked(checked_database_url)] | None = None
    SUPABASE_URL: Annotated[str, checked(_project_url)] | None = None
    SUPABASE_SERVICE_ROLE: DatabaseKey | None = None
    BENCHMARK_OUTBOX: str = "outbox"  # the outbox's folder
    BENCHMARK_NO_MIGRATE: YesOrNo = False  # leave the schema alone (a role that may not change it)
    # Stored with every run: the machine and the region measured from.
    BENCHMARK_HOST: Name = Field(default_factory=socket.gethostname, validate_default=True)
    BENCHMARK_REGION: Name | None = None
    # Read before the others (the file says which key variables exist) and checked as a file: toml_file.config_file.
    BENCHMARK_CONFIG: str | None = None
    # Apprise URLs, read only by the commands that notify: notify_env splits them, Apprise checks each.
    BENCHMARK_NOTIFY: str | None = None
    # --engine ray's cluster when --ray-address is not given (Ray reads it too): executors.ray_cluster checks it.
    RAY_ADDRESS: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _supabase_needs_both(cls, given: Any) -> Any:
        if given.get("SUPABASE_URL") and not given.get("SUPABASE_SERVICE_ROLE"):
            raise refusal("SUPABASE_URL is set but SUPABASE_SERVICE_ROLE is not: set the project's service-role key")
        if given.get("SUPABASE_SERVICE_ROLE") and not given.get("SUPABASE_URL"):
            raise refusal("SUPABASE_SERVICE_ROLE is set but SUPABASE_URL is not: set the project's URL")
        return given

    def value(self, variable: str) -> Any:
        """A variable's checked value (None: not set, or not read by this command)."""
        return getattr(self, variable, None)

    def storage(self) -> dict[str, object]:
        """The Settings fields that say where results go."""
        return {
            "database_url": self.DATABASE_URL,
            "supabase_url": self.SUPABASE_URL,
            "supabase_service_role": self.SUPABASE_SERVICE_ROLE,
            "outbox_dir": self.BENCHMARK_OUTBOX,
            "migrate": not self.BENCHMARK_NO_MIGRATE,
        }


def provider_variable(provider: str, suffix: str) -> str:
    """`openai`, `_API_KEY` -> OPENAI_API_KEY."""
    return provider.upper() + suffix


@lru_cache(maxsize=8)
def environment_schema(providers: tuple[str, ...] = (), key_variables: tuple[str, ...] = ()) -> type[Environment]:
    """Environment with every variable of these providers, and the key variables benchmark.toml's endpoints name."""
    fields: dict[str, Any] = {
        provider_variable(name, suffix): (kind | None, None)
        for name in providers for suffix, kind in PROVIDER_VARIABLES.items()
    }
    keys = {"SUPABASE_SERVICE_ROLE"} | {provider_variable(name, "_API_KEY") for name in providers}
    for variable in key_variables:
        if variable in Environment.model_fields or variable in fields:
            if variable not in keys:
                raise ConfigError(f"benchmark.toml: api_key_env {variable} is a variable the tool reads for something "
                                  "else: give the key a variable of its own, like VLLM_API_KEY")
        else:
            fields[variable] = (Key | None, None)
    return create_model("Environment", __base__=Environment, **fields)


def known_benchmark_variables() -> frozenset[str]:
    return frozenset(v for v in Environment.model_fields if v.startswith("BENCHMARK_")) | set(TEST_SUITE_VARIABLES)


def read_environment(environ: Mapping[str, str], variables: Sequence[str], *, providers: Sequence[str] = (),
                     key_variables: Sequence[str] = (), check_keys: bool = True) -> Environment:
    """`variables` (those a command reads, in the order their refusals go) checked by one schema; the rest keep
    their defaults. `check_keys`=False: keys are held as secrets, not checked (a simulated run sends none)."""
    schema = environment_schema(tuple(providers), tuple(sorted(set(key_variables))))
    given = {name: environ[name] for name in dict.fromkeys(variables) if environ.get(name)}
    return validated(schema, given, None, check_keys=check_keys)  # type: ignore[return-value]


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """A BENCHMARK_* variable that is set but not read: a typo, most likely, so the closest known one is named."""
    known = known_benchmark_variables()
    warnings = []
    for variable in sorted(v for v in environ if v.startswith("BENCHMARK_") and v not in known):
        close = difflib.get_close_matches(variable, sorted(known), n=1)
        hint = f"did you mean {close[0]}?" if close else "a typo?"
        warnings.append(f"unknown variable {variable} is set and ignored ({hint})")
    return warnings
