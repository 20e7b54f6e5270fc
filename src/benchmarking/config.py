"""Settings, read once from flags, the environment, .env and an optional benchmark.toml, then validated."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
import re
import socket
import tomllib
from typing import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError
from .pricing import Price

DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RUN_NAME = "benchmark-run"

# Every BENCHMARK_* variable the tool reads; any other one set in the environment gets a warning (likely a typo).
KNOWN_BENCHMARK_VARIABLES = frozenset(
    {
        "BENCHMARK_CONFIG",
        "BENCHMARK_HOST",
        "BENCHMARK_REGION",
        "BENCHMARK_OUTBOX",
        "BENCHMARK_NO_MIGRATE",
        "BENCHMARK_REQUIRE_POSTGRES",
    }
)
# How a benchmark.toml endpoint's tokens are counted: the provider's usage, else the server's own tokenizer.
TOKEN_COUNTS = ("usage", "tokenize")
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Secret:
    """A key that never shows itself in a repr, a log line or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ProviderSettings:
    """Everything one provider call needs besides the prompt and the model."""

    name: str
    api_key: Secret | None
    key_env: str | None
    model_hint: str
    base_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_tokens: int = DEFAULT_MAX_TOKENS
    stream: bool = True
    retries: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    price: Price | None = None
    token_count: str = "usage"  # "tokenize": count with the server's tokenizer when it sends no usage


@dataclass(frozen=True)
class CustomEndpoint:
    """An OpenAI-compatible endpoint declared in benchmark.toml."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    price: Price | None = None
    headers: tuple[tuple[str, str], ...] = ()
    token_count: str = "usage"


@dataclass(frozen=True)
class Settings:
    """One run's settings; the providers are resolved, in the order they will be measured."""

    prompt: str
    providers: tuple[ProviderSettings, ...]
    models: Mapping[str, str]
    skipped: tuple[str, ...] = ()
    max_tokens: int = DEFAULT_MAX_TOKENS
    timeout_s: float = DEFAULT_TIMEOUT_S
    stream: bool = True
    repeat: int = 1
    retries: int = 0
    simulate: bool = False
    json_output: bool = False
    run_name: str = DEFAULT_RUN_NAME
    triggered_by: str = "cli"
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_service_role: Secret | None = None
    outbox_dir: str = "outbox"
    migrate: bool = True
    host: str = ""
    region: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def mode(self) -> str:
        return "simulated" if self.simulate else "live"

    def run_settings(self) -> dict[str, object]:
        """What is stored with the run so that its numbers can be interpreted later (no secrets)."""
        return {
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "stream": self.stream,
            "repeat": self.repeat,
            "retries": self.retries,
            "timeout_s": self.timeout_s,
            "providers": {p.name: self.models[p.name] for p in self.providers},
        }

    def pointed_at(self, base_urls: Mapping[str, str], api_key: str) -> "Settings":
        """The same settings with every provider sent to other base URLs (the simulator) with a stand-in key."""
        providers = tuple(
            replace(p, base_url=base_urls[p.name], api_key=Secret(api_key)) for p in self.providers
        )
        return replace(self, providers=providers, skipped=())


def whole_number(text: str, flag: str, minimum: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a whole number, not {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{flag} must be at least {minimum}, not {value}")
    return value


def positive_float(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise ConfigError(f"{flag} must be more than 0, not {text}")
    return value


def redact_url(url: str) -> str:
    """A URL fit to print or store: user, password and query string removed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def load_dotenv_file(path: str | Path = ".env") -> None:
    """Load .env into the environment; variables already set win, as users expect from a shell."""
    from dotenv import load_dotenv

    load_dotenv(dotenv_path=Path(path), override=False)


def _price_from_table(table: Mapping[str, object], where: str) -> Price | None:
    if "input_price" not in table and "output_price" not in table:
        return None
    try:
        return Price(
            input=Decimal(str(table["input_price"])),
            output=Decimal(str(table["output_price"])),
            cached_input=(
                Decimal(str(table["cached_input_price"])) if "cached_input_price" in table else None
            ),
            as_of=str(table.get("price_as_of", "unknown")),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: give both input_price and output_price (missing {exc.args[0]})") from None
    except InvalidOperation:
        raise ConfigError(f"{where}: prices must be numbers of USD per 1M tokens") from None


def load_custom_endpoints(path: Path, builtin_names: Sequence[str]) -> tuple[CustomEndpoint, ...]:
    """Read the [[providers]] tables of benchmark.toml."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"providers"}
    if unknown:
        raise ConfigError(f"{path}: unknown section {sorted(unknown)[0]!r}; only [[providers]] tables are read")
    endpoints = []
    for index, table in enumerate(data.get("providers", []), start=1):
        where = f"{path} [[providers]] #{index}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        missing = [key for key in ("name", "base_url", "model") if not table.get(key)]
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} missing")
        name = str(table["name"])
        if not _NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits, - or _")
        if name in builtin_names or name in {e.name for e in endpoints}:
            raise ConfigError(f"{where}: name {name!r} is already taken")
        base_url = str(table["base_url"])
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: base_url must start with http:// or https://")
        headers = table.get("headers", {})
        if not isinstance(headers, dict):
            raise ConfigError(f"{where}: headers must be a table of name = value")
        token_count = table.get("token_count", "usage")
        if token_count not in TOKEN_COUNTS:
            raise ConfigError(f"{where}: token_count must be one of {', '.join(TOKEN_COUNTS)}, not {token_count!r}")
        endpoints.append(
            CustomEndpoint(
                name=name,
                base_url=base_url,
                model=str(table["model"]),
                api_key_env=table.get("api_key_env"),
                price=_price_from_table(table, where),
                headers=tuple((str(k), str(v)) for k, v in headers.items()),
                token_count=token_count,
            )
        )
    return tuple(endpoints)


def parse_model_overrides(items: Sequence[str], known: Sequence[str]) -> dict[str, str]:
    """`--model provider=model`, repeatable."""
    overrides = {}
    for item in items:
        name, sep, model = item.partition("=")
        if not sep or not name or not model:
            raise ConfigError(f"--model takes provider=model, not {item!r}")
        if name not in known:
            raise ConfigError(f"--model: unknown provider {name!r}; known: {', '.join(known)}")
        overrides[name] = model
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


def unknown_benchmark_variables(environ: Mapping[str, str]) -> list[str]:
    return sorted(k for k in environ if k.startswith("BENCHMARK_") and k not in KNOWN_BENCHMARK_VARIABLES)


def storage_settings(environ: Mapping[str, str]) -> dict[str, object]:
    """Where results go: SUPABASE_URL + SUPABASE_SERVICE_ROLE, else DATABASE_URL, else ./benchmarks.db."""
    supabase_url = environ.get("SUPABASE_URL") or None
    role = environ.get("SUPABASE_SERVICE_ROLE") or None
    if supabase_url and not role:
        raise ConfigError("SUPABASE_URL is set but SUPABASE_SERVICE_ROLE is not: set the project's service-role key")
    if role and not supabase_url:
        raise ConfigError("SUPABASE_SERVICE_ROLE is set but SUPABASE_URL is not: set the project's URL")
    if supabase_url and not supabase_url.startswith(("https://", "http://")):
        raise ConfigError("SUPABASE_URL must be the project's URL, like https://your-project.supabase.co")
    database_url = environ.get("DATABASE_URL") or None
    if database_url and not database_url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        scheme = database_url.split(":", 1)[0]
        raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {scheme!r}")
    return {
        "database_url": database_url,
        "supabase_url": supabase_url,
        "supabase_service_role": Secret(role) if role else None,
        "outbox_dir": environ.get("BENCHMARK_OUTBOX") or "outbox",
        "migrate": environ.get("BENCHMARK_NO_MIGRATE", "") in ("", "0"),
    }


def load_settings(
    *,
    prompt: str,
    builtin: Sequence[tuple[str, str]],
    environ: Mapping[str, str],
    provider_selection: str | None = None,
    model_overrides: Sequence[str] = (),
    config_path: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stream: bool = True,
    repeat: int = 1,
    retries: int = 0,
    simulate: bool = False,
    json_output: bool = False,
    run_name: str = DEFAULT_RUN_NAME,
    triggered_by: str = "cli",
) -> Settings:
    """Resolve every provider's model, key, endpoint and price; `builtin` is [(name, default_model), ...]."""
    if not prompt.strip():
        raise ConfigError("the prompt is empty: give --prompt TEXT or --prompt-file PATH")
    warnings = [f"unknown variable {k} is set and ignored (a typo?)" for k in unknown_benchmark_variables(environ)]

    builtin_names = [name for name, _ in builtin]
    toml_path = config_path or environ.get("BENCHMARK_CONFIG")
    if toml_path is not None:
        if not Path(toml_path).is_file():
            raise ConfigError(f"config file {toml_path} does not exist")
        custom = load_custom_endpoints(Path(toml_path), builtin_names)
    elif Path("benchmark.toml").is_file():
        custom = load_custom_endpoints(Path("benchmark.toml"), builtin_names)
    else:
        custom = ()

    known = builtin_names + [e.name for e in custom]
    selected = parse_provider_selection(provider_selection, known)
    overrides = parse_model_overrides(model_overrides, known)

    common = dict(timeout_s=timeout_s, max_tokens=max_tokens, stream=stream, retries=retries)
    resolved: list[ProviderSettings] = []
    models: dict[str, str] = {}
    skipped: list[str] = []
    for name, default_model in builtin:
        if name not in selected:
            continue
        upper = name.upper()
        models[name] = overrides.get(name) or environ.get(f"{upper}_MODEL") or default_model
        key = environ.get(f"{upper}_API_KEY")
        resolved.append(
            ProviderSettings(
                name=name,
                api_key=Secret(key) if key else None,
                key_env=f"{upper}_API_KEY",
                model_hint=f"set {upper}_MODEL or --model {name}=MODEL",
                base_url=environ.get(f"{upper}_BASE_URL") or None,
                **common,
            )
        )
    for endpoint in custom:
        if endpoint.name not in selected:
            continue
        models[endpoint.name] = overrides.get(endpoint.name) or endpoint.model
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
                **common,
            )
        )

    if not simulate:
        for p in resolved:
            if p.api_key is None:
                skipped.append(f"skipping {p.name}: set {p.key_env} in .env or the environment to measure it")
        resolved = [p for p in resolved if p.api_key is not None]

    storage = storage_settings(environ)
    return Settings(
        prompt=prompt,
        providers=tuple(resolved),
        models=models,
        skipped=tuple(skipped),
        max_tokens=max_tokens,
        timeout_s=timeout_s,
        stream=stream,
        repeat=repeat,
        retries=retries,
        simulate=simulate,
        json_output=json_output,
        run_name=run_name,
        triggered_by=triggered_by,
        **storage,
        host=environ.get("BENCHMARK_HOST") or socket.gethostname(),
        region=environ.get("BENCHMARK_REGION") or None,
        warnings=tuple(warnings),
    )
