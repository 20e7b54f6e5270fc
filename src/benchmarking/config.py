"""Settings, read once from flags, the environment, .env and an optional benchmark.toml, then validated."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
import difflib
import io
import math
from pathlib import Path
import re
import socket
import stat
import tomllib
from typing import Mapping, Sequence
from urllib.parse import SplitResult, urlsplit, urlunsplit

from . import redaction
from .durations import parse_duration
from .errors import ConfigError
from .pricing import Price
from .slo import SloConfig, Targets
from .textfile import MAX_PROMPT_BYTES, read_bounded, utf8_text
from .workloads import Workload, default_workload, prompt_record

DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RUN_NAME = "benchmark-run"
DEFAULT_MAX_COST_USD = Decimal("1.00")  # a live run whose cost could exceed this stops before sending anything

# Longer names are refused: PostgreSQL cannot index a few thousand characters of provider/model name, and such a row
# would be refused by the database after it was measured.
MAX_NAME_CHARS = 200
MAX_USD_PER_MILLION = 10_000  # a price in benchmark.toml: the dearest models cost a few hundred
MAX_CONFIG_FILE_BYTES = 10_000_000  # .env, benchmark.toml: far more than any needs; a bound all the same
# A day: more than any request should take; a bigger number (inf, 1e300) overflows the HTTP clients' timers.
MAX_TIMEOUT_S = 86_400.0

# The keys a [[providers]] table of benchmark.toml may hold; any other key is refused by name (a typo like baseurl).
PROVIDER_TABLE_KEYS = frozenset(
    {
        "name",
        "base_url",
        "model",
        "models",
        "api_key_env",
        "input_price",
        "output_price",
        "cached_input_price",
        "price_as_of",
        "headers",
        "token_count",
    }
)
_TRUE_WORDS = ("1", "true", "yes")
_FALSE_WORDS = ("0", "false", "no")

# Every BENCHMARK_* variable the tool reads; any other one set in the environment gets a warning (likely a typo).
KNOWN_BENCHMARK_VARIABLES = frozenset(
    {
        "BENCHMARK_CONFIG",
        "BENCHMARK_HOST",
        "BENCHMARK_REGION",
        "BENCHMARK_OUTBOX",
        "BENCHMARK_NO_MIGRATE",
        "BENCHMARK_REQUIRE_POSTGRES",
        "BENCHMARK_REQUIRE_RAY",
        "BENCHMARK_NOTIFY",
    }
)
# How a benchmark.toml endpoint's tokens are counted: the provider's usage, else the server's own tokenizer.
TOKEN_COUNTS = ("usage", "tokenize")
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Secret:
    """A key that never shows itself in a repr, a log line or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        redaction.register(value)  # from now on no output of the process shows it
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return Secret, (self._value,)  # unpickled through __init__: a worker process registers it too

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
    # Open the connection with a free GET /models before every request (one at a time), or only before a client's
    # first (a load run: its connections stay open, and a warm-up per request would double the requests).
    warm_each_request: bool = True


@dataclass(frozen=True)
class CustomEndpoint:
    """An OpenAI-compatible endpoint declared in benchmark.toml."""

    name: str
    base_url: str
    models: tuple[str, ...]
    api_key_env: str | None = None
    price: Price | None = None
    headers: tuple[tuple[str, str], ...] = ()
    token_count: str = "usage"


# The sections benchmark.toml may hold; any other is refused by name.
TOML_SECTIONS = ("providers", "slo", "alerts", "notify")
# [slo] keys: the per-request targets, the window's success rate, and the percentile a window is judged by.
SLO_KEYS = ("ttft_ms", "latency_ms", "tokens_per_second", "success_rate", "percentile")
ALERT_RULES = ("outage", "slo_breach", "regression")
ALERT_KEYS = ("rules", "consecutive_failures", "window", "baseline", "regression_threshold")
# The outage rule reads this many newest results of each provider and model at every evaluation: a bound keeps that
# read small (and the number within what a database's LIMIT takes).
MAX_CONSECUTIVE_FAILURES = 10_000


@dataclass(frozen=True)
class AlertRules:
    """The [alerts] table: which rules are on and their settings (durations in seconds)."""

    rules: tuple[str, ...] = ALERT_RULES
    consecutive_failures: int = 3
    window_s: float = 3600.0  # the last window every rule judges
    baseline_s: float = 7 * 86400.0  # the regression rule's baseline: this long, just before the window
    regression_threshold: float = 0.20  # slower by at least this fraction of the baseline's median


@dataclass(frozen=True)
class Watching:
    """What watching reads from benchmark.toml and the environment: SLOs, alert rules, where notifications go."""

    slo: SloConfig = SloConfig()
    alerts: AlertRules = AlertRules()
    notify_urls: tuple[Secret, ...] = ()  # Apprise URLs: they hold tokens, so they never print themselves


@dataclass(frozen=True)
class Settings:
    """One run's settings; the providers are resolved, in the order they will be measured."""

    prompt: str
    providers: tuple[ProviderSettings, ...]
    models: Mapping[str, tuple[str, ...]]  # every model measured, per provider
    skipped: tuple[str, ...] = ()
    max_tokens: int = DEFAULT_MAX_TOKENS  # for a prompt that sets none (a tier's cap is used instead, unless given)
    max_tokens_given: bool = False  # --max-tokens was given: it wins over the tiers' caps
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
    workload: Workload | None = None  # None: the MVP's one prompt (default_workload(prompt))
    dry_run: bool = False
    max_cost_usd: Decimal = DEFAULT_MAX_COST_USD
    watching: Watching = Watching()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def slo(self) -> SloConfig:
        return self.watching.slo

    @property
    def mode(self) -> str:
        return "simulated" if self.simulate else "live"

    @property
    def measured_workload(self) -> Workload:
        return self.workload or default_workload(self.prompt)

    def run_settings(self) -> dict[str, object]:
        """What is stored with the run so that its numbers can be interpreted later (no secrets).

        Each distinct prompt is stored once here, not once per request: a user's prompts as they are, a tier's
        synthetic prompt by its size and digest (workloads.tier_prompt rebuilds it exactly).
        """
        workload = self.measured_workload

        def one_or_all(models: tuple[str, ...]) -> str | list[str]:
            return models[0] if len(models) == 1 else list(models)

        stored = {
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "stream": self.stream,
            "repeat": self.repeat,
            "retries": self.retries,
            "timeout_s": self.timeout_s,
            "providers": {p.name: one_or_all(self.models[p.name]) for p in self.providers},
        }
        if self.workload is not None:
            stored["workload"] = {"name": workload.name, "cache_mode": workload.cache_mode,
                                  "prompts": [prompt_record(p) for p in workload.prompts]}
        return stored

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


def positive_float(text: str, flag: str, maximum: float = MAX_TIMEOUT_S) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number of seconds, not {text!r}") from None
    if math.isnan(value):
        raise ConfigError(f"{flag} must be a number of seconds, not {text!r}")
    if not value > 0:
        raise ConfigError(f"{flag} must be more than 0, not {text}")
    if value > maximum:
        raise ConfigError(f"{flag} must be at most {maximum:g} seconds, not {text}")
    return value


def checked_name(value: str, what: str) -> str:
    """A name that is stored (run, provider, model, host): at most MAX_NAME_CHARS characters of UTF-8 text."""
    if len(value) > MAX_NAME_CHARS:
        raise ConfigError(f"{what} is {len(value)} characters long; names are limited to {MAX_NAME_CHARS}: "
                          "shorten it")
    if not _is_utf8(value):
        raise ConfigError(f"{what} is not UTF-8 text: check the terminal's or the file's encoding")
    return value


def _is_utf8(text: str) -> bool:
    # Bytes that are not UTF-8 reach Python from argv and the environment as lone surrogates, which no database takes.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_utf8(path: Path, what: str, max_bytes: int | None = None) -> str:
    """A text file's contents, or one line saying why it cannot be used (not a regular file, unreadable, too big, not
    UTF-8); a byte-order mark is dropped."""
    if max_bytes is None:
        data = read_bounded(path, what, MAX_CONFIG_FILE_BYTES,
                            lambda size: ConfigError(f"{what} {path} is {size / 1e6:.1f} MB: is it the right file?"))
    else:
        data = read_bounded(path, what, max_bytes, lambda size: _too_big(f"{what} {path}", size))
    return utf8_text(data, what, path)


def _too_big(what: str, size_bytes: int) -> ConfigError:
    return ConfigError(f"{what} is {size_bytes / 1e6:.1f} MB; prompts are limited to {MAX_PROMPT_BYTES / 1e6:g} MB "
                       "(a 10,000-token prompt is about 40 kB)")


def split_url(url: str, what: str, example: str) -> SplitResult:
    """urlsplit, refused in one line (never printing the URL) where the host in [...] is no IPv6 address or has
    more than a port after it; urlsplit itself raises a bare ValueError for some of these and lets others through."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    host = parts.netloc.rpartition("@")[2] if parts is not None else ""
    after = host.partition("]")[2] if host.startswith("[") else ""
    if parts is None or (after and not after.startswith(":")):
        raise ConfigError(f"{what} has a malformed IPv6 address: write it in brackets, a port after them if any, "
                          f"{example}")
    return parts


def checked_base_url(url: str, what: str, key_in: str | None = None) -> str:
    """A base URL the HTTP client can open: http(s), a host and a port from 1 to 65535, no credentials (`key_in`
    says where the key goes instead). The URL is never printed."""
    redaction.register_url(url)
    parts = split_url(url, what, "like http://[::1]:8000/v1")
    if "@" in parts.netloc:
        # The SDKs would send them as Basic auth instead of the key, and servers echo what they were sent.
        raise ConfigError(f"{what} holds a user name or password (user:password@host): remove it; "
                          f"the key goes in {key_in or 'the provider key variable'}")
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{what} must start with http:// or https://")
    if not _port_is_valid(parts.netloc):
        raise ConfigError(f"{what} has a port that is not a number from 1 to 65535: fix the number after the host")
    if not parts.hostname:
        raise ConfigError(f"{what} has no host: give one, like http://127.0.0.1:8000/v1")
    return url


def _port_is_valid(netloc: str) -> bool:
    after_host = netloc.rpartition("@")[2].rpartition("]")[2]  # an IPv6 host's colons are inside [...]
    if ":" not in after_host:
        return True  # no port given: the scheme's default
    port = after_host.rpartition(":")[2]
    return port.isascii() and port.isdigit() and 1 <= int(port) <= 65535


def checked_key(value: str, variable: str) -> str:
    """An API key that can go into an HTTP header; the message names the variable, never the value."""
    if any(c.isspace() for c in value):
        problem = "contains a space or a line break"
    elif not value.isascii():
        problem = "contains a character that is not ASCII (a curly quote, a dash or an accent from copy and paste?)"
    elif not value.isprintable():
        problem = "contains a control character"
    else:
        return value
    raise ConfigError(f"{variable} {problem}: set it to the key exactly as the provider shows it")


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

    path = Path(path)
    if not path.is_file():
        return
    load_dotenv(stream=io.StringIO(read_utf8(path, "the file")), override=False)


def _price_from_table(table: Mapping[str, object], where: str) -> Price | None:
    if "input_price" not in table and "output_price" not in table:
        return None
    for key in ("input_price", "output_price"):
        if key not in table:
            raise ConfigError(f"{where}: give both input_price and output_price (missing {key})")
    as_of = table.get("price_as_of", "unknown")
    if not isinstance(as_of, (str, date)):
        raise ConfigError(f'{where}: price_as_of must be a date, like price_as_of = "2026-11-28", not '
                          f"{_toml_kind(as_of)}")
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
        raise ConfigError(f"{where}: {fix}, not {_toml_kind(value)}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: {fix}, not {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}: {fix}, not {value!r}")
    if amount > MAX_USD_PER_MILLION:  # a typo, or a cost no database column holds (1e400 was stored as inf)
        raise ConfigError(f"{where}: {key} must be at most {MAX_USD_PER_MILLION:,} USD per 1M tokens")
    return amount


def _toml_kind(value: object) -> str:
    """What a TOML value is, in the words of the TOML spec, for a message (the value itself may be long or secret)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str):
        return "a string"
    return "a date or time"


def _toml_string(table: Mapping[str, object], key: str, where: str, example: str) -> str:
    value = table[key]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be one string in quotes, like {key} = {example}, not "
                          f"{_toml_kind(value)}")
    return value


def _toml_headers(table: Mapping[str, object], where: str) -> tuple[tuple[str, str], ...]:
    headers = table.get("headers", {})
    if not isinstance(headers, dict):
        raise ConfigError(f"{where}: headers must be a table of name = value")
    checked = []
    for name, value in headers.items():
        if not _HEADER_NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: header name {name!r} may hold only letters, digits and -")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: header {name} must be a string, not {_toml_kind(value)}")
        text = str(value)
        redaction.register_header(name, text)
        # The value is not printed: headers often carry tokens.
        if not (text.isascii() and text.replace("\t", " ").isprintable()):
            raise ConfigError(f"{where}: header {name} must be plain ASCII text on one line")
        checked.append((name, text))
    return tuple(checked)


def read_toml(path: Path) -> dict[str, object]:
    """benchmark.toml, parsed, with every section known."""
    try:
        data = tomllib.loads(read_utf8(path, "config file"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - set(TOML_SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section {sorted(unknown)[0]!r}; the sections read are "
                          "[[providers]], [slo], [alerts] and [notify]")
    return data


def load_custom_endpoints(path: Path, builtin_names: Sequence[str]) -> tuple[CustomEndpoint, ...]:
    """Read the [[providers]] tables of benchmark.toml."""
    data = read_toml(path)
    tables = data.get("providers", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: providers must be [[providers]] tables, not {_toml_kind(tables)}")
    endpoints = []
    for index, table in enumerate(tables, start=1):
        where = f"{path} [[providers]] #{index}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown_keys = sorted(set(table) - PROVIDER_TABLE_KEYS)
        if unknown_keys:
            key = unknown_keys[0]
            close = difflib.get_close_matches(key, PROVIDER_TABLE_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(sorted(PROVIDER_TABLE_KEYS))}")
        missing = [key for key in ("name", "base_url") if key not in table or table[key] == ""]
        if not table.get("model") and not table.get("models"):
            missing.append("model")
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} missing")
        if "model" in table and "models" in table:
            raise ConfigError(f"{where}: give model or models, not both")
        name = checked_name(_toml_string(table, "name", where, '"local-vllm"'), f"{where}: name")
        if not _NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits, - or _")
        if name in builtin_names or name in {e.name for e in endpoints}:
            raise ConfigError(f"{where}: name {name!r} is already taken")
        key_env = table.get("api_key_env")
        key_in = key_env if isinstance(key_env, str) and _VARIABLE_PATTERN.match(key_env) else "api_key_env's variable"
        base_url = checked_base_url(_toml_string(table, "base_url", where, '"http://127.0.0.1:8000/v1"'),
                                    f"{where}: base_url", key_in)
        if "models" in table:
            listed = table["models"]
            if not isinstance(listed, list) or not listed or not all(isinstance(m, str) and m for m in listed):
                raise ConfigError(f"{where}: models must be a list of model names, like [\"llama3.2\", \"qwen3\"], "
                                  f"not {_toml_kind(listed)}")
            models = tuple(dict.fromkeys(checked_name(m, f"{where}: models") for m in listed))
        else:
            models = (checked_name(_toml_string(table, "model", where, '"llama3.2"'), f"{where}: model"),)
        api_key_env = None
        if "api_key_env" in table:
            api_key_env = _toml_string(table, "api_key_env", where, '"VLLM_API_KEY"')
            if not _VARIABLE_PATTERN.match(api_key_env):
                # Not printed: a key pasted here by mistake must not reach the console.
                raise ConfigError(f"{where}: api_key_env must name an environment variable (letters, digits and _), "
                                  "like VLLM_API_KEY, not hold the key itself")
        token_count = table.get("token_count", "usage")
        if token_count not in TOKEN_COUNTS:
            raise ConfigError(f"{where}: token_count must be one of {', '.join(TOKEN_COUNTS)}, not {token_count!r}")
        endpoints.append(
            CustomEndpoint(
                name=name,
                base_url=base_url,
                models=models,
                api_key_env=api_key_env,
                price=_price_from_table(table, where),
                headers=_toml_headers(table, where),
                token_count=token_count,
            )
        )
    return tuple(endpoints)


def config_file(config_path: str | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else BENCHMARK_CONFIG, else ./benchmark.toml if there is one."""
    if config_path == "":  # a shell variable that was not set: not the same as no --config
        raise ConfigError("--config takes the path of a benchmark.toml, not ''")
    toml_path = config_path or environ.get("BENCHMARK_CONFIG") or None  # empty, as every variable here: not set
    if toml_path is not None:
        if not Path(toml_path).is_file():
            raise ConfigError(f"config file {toml_path} {_not_a_file(Path(toml_path))}")
        return Path(toml_path)
    return Path("benchmark.toml") if Path("benchmark.toml").is_file() else None


def _not_a_file(path: Path) -> str:
    """What a path that is not a regular file is, as a message ends: a FIFO or a device is never opened (a FIFO with
    no writer would wait for ever), and it does exist."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "does not exist"
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
    kind = next((name for test, name in kinds if test(mode)), "something else")
    return f"is {kind}, not a file: give a benchmark.toml"


def load_watching(path: Path | None, environ: Mapping[str, str], notify: bool = True) -> Watching:
    """[slo], [alerts] and [notify] of benchmark.toml, and BENCHMARK_NOTIFY, checked (notify=False: the URLs are
    not read, for commands that send nothing)."""
    data = read_toml(path) if path is not None else {}
    where = str(path)
    return Watching(
        slo=_slo_config(_toml_table(data, "slo", where), where),
        alerts=_alert_rules(_toml_table(data, "alerts", where), where),
        notify_urls=_notify_urls(_toml_table(data, "notify", where), where, environ) if notify else (),
    )


def _toml_table(data: Mapping[str, object], name: str, where: str) -> dict[str, object]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {name} must be a [{name}] table, not {_toml_kind(table)}")
    return table


def _unknown_key(key: str, allowed: Sequence[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _toml_number(value: object, what: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number, like {example}, not {_toml_kind(value)}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, like {example}, not {value}")
    return float(value)


def _targets(table: Mapping[str, object], where: str, base: Targets) -> Targets:
    """One [slo] table's targets; keys it leaves out keep `base`'s values."""
    values: dict[str, object] = {}
    for key, value in table.items():
        what = f"{where}: {key}"
        if key not in SLO_KEYS:
            raise _unknown_key(key, SLO_KEYS, where)
        if key == "percentile":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
                raise ConfigError(f"{what} must be a whole number from 1 to 99, like percentile = 90, not {value!r}")
            values[key] = value
        elif key == "success_rate":
            number = _toml_number(value, what, "success_rate = 0.99")
            if not 0 <= number <= 1:
                raise ConfigError(f"{what} is a fraction from 0 to 1, like success_rate = 0.99, not {value!r}")
            values[key] = number
        else:
            number = _toml_number(value, what, f"{key} = 800")
            if number <= 0:
                raise ConfigError(f"{what} must be more than 0, not {value!r}")
            values[key] = number
    return replace(base, **values)


def _slo_config(table: Mapping[str, object], where: str) -> SloConfig:
    """[slo] defaults and its [slo."provider/model"] overrides, each override complete (defaults filled in)."""
    plain = {key: value for key, value in table.items() if not isinstance(value, dict)}
    defaults = _targets(plain, f"{where} [slo]", Targets())
    overrides = {}
    for key, value in table.items():
        if not isinstance(value, dict):
            continue
        provider, slash, model = key.partition("/")
        if not (provider and slash and model):
            raise ConfigError(f'{where} [slo.{key}]: an override is named "provider/model", like '
                              '[slo."openai/gpt-4o-mini"]')
        overrides[key] = _targets(value, f'{where} [slo."{key}"]', defaults)
    return SloConfig(defaults=defaults, overrides=overrides)


def _alert_rules(table: Mapping[str, object], where: str) -> AlertRules:
    where = f"{where} [alerts]"
    rules = AlertRules()
    for key, value in table.items():
        what = f"{where}: {key}"
        if key not in ALERT_KEYS:
            raise _unknown_key(key, ALERT_KEYS, where)
        if key == "rules":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f'{what} must be a list of rule names, like rules = ["outage", "slo_breach"]')
            unknown = [v for v in value if v not in ALERT_RULES]
            if unknown:
                raise ConfigError(f"{what}: unknown rule {unknown[0]!r}; rules: {', '.join(ALERT_RULES)}")
            rules = replace(rules, rules=tuple(dict.fromkeys(value)))
        elif key == "consecutive_failures":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONSECUTIVE_FAILURES:
                raise ConfigError(
                    f"{what} must be a whole number from 1 to {MAX_CONSECUTIVE_FAILURES:,}, not {value!r}")
            rules = replace(rules, consecutive_failures=value)
        elif key in ("window", "baseline"):
            if not isinstance(value, str):
                raise ConfigError(f'{what} must be a duration in quotes, like {key} = "1h", not {_toml_kind(value)}')
            rules = replace(rules, **{f"{key}_s": parse_duration(value, what)})
        else:
            number = _toml_number(value, what, "regression_threshold = 0.2")
            if number <= 0:
                raise ConfigError(f"{what} is a fraction more than 0, like 0.2 for 20 %, not {value!r}")
            rules = replace(rules, regression_threshold=number)
    return rules


def _notify_urls(table: Mapping[str, object], where: str, environ: Mapping[str, str]) -> tuple[Secret, ...]:
    """BENCHMARK_NOTIFY if set (split as notify_env.py says), else [notify] urls; each checked by Apprise itself."""
    from .notify_env import environment_urls

    for key in table:
        if key != "urls":
            raise _unknown_key(key, ("urls",), f"{where} [notify]")
    from_environment = environment_urls(environ)
    if from_environment is not None:
        source, urls = "BENCHMARK_NOTIFY", from_environment
    else:
        source = f"{where} [notify] urls"
        urls = table.get("urls", [])
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(f'{source} must be a list of Apprise URLs in quotes, like urls = ["ntfy://topic"]')
    for url in urls:
        redaction.register(url)
    if urls:
        from .notify import check_url

        for index, url in enumerate(urls, start=1):
            check_url(url, f"{source}: URL {index} of {len(urls)}")
    return tuple(Secret(u) for u in dict.fromkeys(urls))


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


def yes_or_no(text: str, variable: str) -> bool:
    """1/true/yes or 0/false/no, in any case; empty is no (as if unset). Anything else is refused, not guessed."""
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS or not word:
        return False
    raise ConfigError(f"{variable} takes 1, true or yes, or 0, false or no, not {text[:40]!r}")


def checked_database_url(url: str) -> str:
    """DATABASE_URL, refused in one line when it cannot work. The URL is never printed: it holds the password."""
    example = "like postgresql://user:password@host:5432/dbname"
    if url.startswith("sqlite:///"):
        if url.removeprefix("sqlite:///") == ":memory:":
            raise ConfigError("DATABASE_URL=sqlite:///:memory: would keep nothing after the run: give a file, "
                              "like sqlite:///benchmarks.db")
        return url
    parts = split_url(url, "DATABASE_URL", "like postgresql://user:password@[::1]:5432/dbname")
    after_host = url.split("//", 1)[1][len(parts.netloc):]
    if "@" not in parts.netloc and "@" in after_host:
        # user:pa/ss@host: the URL's host part ends at the /, ? or #, so the password's tail looks like a path.
        raise ConfigError("DATABASE_URL: the password (or user name) holds a /, ? or # that is not percent-encoded: "
                          "write / as %2F, ? as %3F and # as %23")
    if re.search(r"%(?![0-9A-Fa-f]{2})", parts.netloc.rpartition("@")[0]):
        raise ConfigError("DATABASE_URL: the password (or user name) holds a % that does not start a percent-escape "
                          "like %2F: write % as %25")
    if "," in parts.netloc.rpartition("@")[2]:
        raise ConfigError(f"DATABASE_URL names several hosts; give one, {example}")
    if not _port_is_valid(parts.netloc):
        raise ConfigError(f"DATABASE_URL has a port that is not a number from 1 to 65535: write it {example}")
    if not parts.hostname and "host=" not in parts.query:
        raise ConfigError(f"DATABASE_URL has no host: give one, {example}")
    return url


def load_settings(
    *,
    prompt: str,
    builtin: Sequence[tuple[str, str]],
    environ: Mapping[str, str],
    provider_selection: str | None = None,
    model_overrides: Sequence[str] = (),
    config_path: str | None = None,
    max_tokens: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stream: bool = True,
    repeat: int = 1,
    retries: int = 0,
    simulate: bool = False,
    json_output: bool = False,
    run_name: str = DEFAULT_RUN_NAME,
    triggered_by: str = "cli",
    workload: Workload | None = None,
    dry_run: bool = False,
    max_cost_usd: Decimal = DEFAULT_MAX_COST_USD,
) -> Settings:
    """Resolve every provider's model, key, endpoint and price; `builtin` is [(name, default_model), ...]."""
    if not prompt.strip():
        raise ConfigError("the prompt is empty: give --prompt TEXT or --prompt-file PATH")
    if not _is_utf8(prompt):
        raise ConfigError("the prompt is not UTF-8 text: check the terminal's encoding, or use --prompt-file PATH")
    if len(prompt.encode("utf-8")) > MAX_PROMPT_BYTES:
        raise _too_big("the prompt", len(prompt.encode("utf-8")))
    checked_name(run_name, "--run-name")
    checked_name(triggered_by, "--triggered-by")
    warnings = [f"unknown variable {k} is set and ignored (a typo?)" for k in unknown_benchmark_variables(environ)]

    builtin_names = [name for name, _ in builtin]
    toml_path = config_file(config_path, environ)
    custom = load_custom_endpoints(toml_path, builtin_names) if toml_path else ()
    watching = load_watching(toml_path, environ)

    known = builtin_names + [e.name for e in custom]
    selected = parse_provider_selection(provider_selection, known)
    overrides = parse_model_overrides(model_overrides, known)

    default_max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    common = dict(timeout_s=timeout_s, max_tokens=default_max_tokens, stream=stream, retries=retries)
    resolved: list[ProviderSettings] = []
    models: dict[str, tuple[str, ...]] = {}
    skipped: list[str] = []
    for name, default_model in builtin:
        if name not in selected:
            continue
        upper = name.upper()
        models[name] = overrides.get(name) or model_list(environ.get(f"{upper}_MODEL") or default_model,
                                                         f"{upper}_MODEL")
        key = environ.get(f"{upper}_API_KEY")
        base_url = environ.get(f"{upper}_BASE_URL") or None
        resolved.append(
            ProviderSettings(
                name=name,
                api_key=Secret(key) if key else None,
                key_env=f"{upper}_API_KEY",
                model_hint=f"set {upper}_MODEL or --model {name}=MODEL",
                base_url=checked_base_url(base_url, f"{upper}_BASE_URL", f"{upper}_API_KEY") if base_url else None,
                **common,
            )
        )
    for endpoint in custom:
        if endpoint.name not in selected:
            continue
        models[endpoint.name] = overrides.get(endpoint.name) or endpoint.models
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
            if p.api_key is not None and p.key_env:
                checked_key(p.api_key.reveal(), p.key_env)
            if p.api_key is None:
                skipped.append(f"skipping {p.name}: set {p.key_env} in .env or the environment to measure it")
        resolved = [p for p in resolved if p.api_key is not None]

    storage = storage_settings(environ)
    return Settings(
        prompt=prompt,
        providers=tuple(resolved),
        models=models,
        skipped=tuple(skipped),
        max_tokens=default_max_tokens,
        max_tokens_given=max_tokens is not None,
        timeout_s=timeout_s,
        stream=stream,
        repeat=repeat,
        retries=retries,
        simulate=simulate,
        json_output=json_output,
        run_name=run_name,
        triggered_by=triggered_by,
        **storage,
        host=checked_name(environ.get("BENCHMARK_HOST") or socket.gethostname(), "BENCHMARK_HOST"),
        region=checked_name(environ["BENCHMARK_REGION"], "BENCHMARK_REGION") if environ.get("BENCHMARK_REGION")
        else None,
        workload=workload,
        dry_run=dry_run,
        max_cost_usd=max_cost_usd,
        watching=watching,
        warnings=tuple(warnings),
    )
