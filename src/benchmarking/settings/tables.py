"""benchmark.toml's [[providers]], [slo] and [alerts] as pydantic models: types, ranges and what values mean, each
refusal one line (refusal.refused).

Imported only where benchmark.toml is read, never at the command line's import: pydantic costs `--help` time.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
import re
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, model_validator

from .. import redaction
from ..durations import parse_duration
from ..errors import ConfigError
from ..pricing import Price
from .model import ALERT_RULES
from .refusal import checked, refusal, rule, subject, validated
from .toml_file import toml_kind
from .urls import checked_base_url
from .values import checked_name

# The outage rule reads this many newest results of each provider and model at every evaluation: a bound keeps that
# read small (and the number within what a database's LIMIT takes).
MAX_CONSECUTIVE_FAILURES = 10_000
MAX_USD_PER_MILLION = 10_000  # a price in benchmark.toml: the dearest models cost a few hundred

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _number(said: str, example: str, **constraints: Any) -> Any:
    return rule(said, example, f"must be a number, like {example}", **constraints)


class _Table(BaseModel):
    # strict: TOML's types are the user's, nothing is coerced ("5" is no number, true is no 1); no nan or inf
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SloTable(_Table):
    """One [slo] table: the per-request targets, the window's success rate, the percentile a window is judged by."""

    ttft_ms: float | None = _number("must be more than 0", "ttft_ms = 800", gt=0)
    latency_ms: float | None = _number("must be more than 0", "latency_ms = 800", gt=0)
    tokens_per_second: float | None = _number("must be more than 0", "tokens_per_second = 800", gt=0)
    success_rate: float | None = _number("is a fraction from 0 to 1, like success_rate = 0.99", "success_rate = 0.99",
                                         ge=0, le=1)
    percentile: int | None = rule("must be a whole number from 1 to 99, like percentile = 90", ge=1, le=99)


def _known_rules(rules: list[str]) -> list[str]:
    unknown = [r for r in rules if r not in ALERT_RULES]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; rules: {', '.join(ALERT_RULES)}")
    return rules


_RULES_LIST = 'must be a list of rule names, like rules = ["outage", "slo_breach"]'


class AlertsTable(_Table):
    """The [alerts] table; a duration is text, like "1h", held in seconds once checked."""

    rules: Annotated[list[str], AfterValidator(_known_rules)] | None = rule(_RULES_LIST, type_rule=_RULES_LIST)
    consecutive_failures: int | None = rule(f"must be a whole number from 1 to {MAX_CONSECUTIVE_FAILURES:,}",
                                             ge=1, le=MAX_CONSECUTIVE_FAILURES)
    window: Annotated[str, checked(parse_duration)] | None = rule(
        "", type_rule='must be a duration in quotes, like window = "1h"')
    baseline: Annotated[str, checked(parse_duration)] | None = rule(
        "", type_rule='must be a duration in quotes, like baseline = "1h"')
    regression_threshold: float | None = _number("is a fraction more than 0, like 0.2 for 20 %",
                                                 "regression_threshold = 0.2", gt=0)


def _string(example: str) -> Any:
    return rule("", type_rule=f"must be one string in quotes, like {example}")


def _usd_per_million(value: object, subject: str) -> Decimal:
    key = subject.rpartition(": ")[2]
    fix = f'must be a number of USD per 1M tokens, 0 or more, like {key} = "0.10"'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{subject} {fix}, not {toml_kind(value)}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{subject} {fix}, not {value!r}")
    if amount > MAX_USD_PER_MILLION:  # a typo, or a cost no database column holds (1e400 was stored as inf)
        raise ConfigError(f"{subject} must be at most {MAX_USD_PER_MILLION:,} USD per 1M tokens")
    return amount


def _date(value: object, subject: str) -> str:
    if not isinstance(value, (str, date)):
        raise ConfigError(f'{subject} must be a date, like price_as_of = "2026-11-28", not {toml_kind(value)}')
    return str(value)


def _headers(headers: dict[str, Any], subject: str) -> tuple[tuple[str, str], ...]:
    where = subject.rpartition(": ")[0]
    checked = []
    for name, value in headers.items():
        if not _HEADER_NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: header name {name!r} may hold only letters, digits and -")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: header {name} must be a string, not {toml_kind(value)}")
        text = str(value)
        redaction.register_header(name, text)
        # The value is not printed: headers often carry tokens.
        if not (text.isascii() and text.replace("\t", " ").isprintable()):
            raise ConfigError(f"{where}: header {name} must be plain ASCII text on one line")
        checked.append((name, text))
    return tuple(checked)


def _endpoint_name(name: str, subject: str) -> str:
    checked_name(name, subject)
    if name and not _NAME_PATTERN.match(name):  # empty: said missing, below
        raise ConfigError(f"{subject} {name!r} must be lower-case letters, digits, - or _")
    return name


def _variable_name(name: str, subject: str) -> str:
    if not _VARIABLE_PATTERN.match(name):
        # Not printed: a key pasted here by mistake must not reach the console.
        raise ConfigError(f"{subject} must name an environment variable (letters, digits and _), like VLLM_API_KEY, "
                          "not hold the key itself")
    return name


def _base_url(url: str, info: ValidationInfo) -> str:
    """The endpoint's URL; the key goes in the variable api_key_env names (checked before it: keys go in order)."""
    key_in = info.data.get("api_key_env") or "api_key_env's variable"
    try:
        return checked_base_url(url, subject(info), key_in) if url else url  # empty: said missing, below
    except ConfigError as exc:
        raise refusal(str(exc)) from None


def _model_names(models: list[str], subject: str) -> tuple[str, ...]:
    if models and not all(models):
        raise ConfigError(f'{subject} must be a list of model names, like ["llama3.2", "qwen3"], not a list')
    return tuple(dict.fromkeys(checked_name(m, subject) for m in models))


class ProviderTable(_Table):
    """One [[providers]] table: an OpenAI-compatible endpoint, its models, key variable, price and headers.

    The keys are in the order an unknown key's message lists them: alphabetical (api_key_env before base_url, whose
    message names the key's variable)."""

    # The API the endpoint speaks (settings/apis.py APIS).
    api: Literal["chat_completions", "responses", "messages", "generate_content"] | None = rule(
        "must be one of chat_completions, responses, messages, generate_content",
        type_rule='must be one string in quotes, like api = "responses"')
    api_key_env: Annotated[str, checked(_variable_name)] | None = _string('api_key_env = "VLLM_API_KEY"')
    base_url: Annotated[str, AfterValidator(_base_url)] | None = _string('base_url = "http://127.0.0.1:8000/v1"')
    # A price takes a string or a number, price_as_of a string or a date: their own messages say so. Once checked,
    # a price is a Decimal, headers and models are tuples.
    cached_input_price: Annotated[Any, checked(_usd_per_million)] = None
    headers: Annotated[dict[str, Any], checked(_headers)] | None = rule(
        "", type_rule="must be a table of name = value")
    input_price: Annotated[Any, checked(_usd_per_million)] = None
    model: Annotated[str, checked(checked_name)] | None = _string('model = "llama3.2"')
    models: Annotated[list[str], checked(_model_names)] | None = rule(
        "", type_rule='must be a list of model names, like ["llama3.2", "qwen3"]')
    name: Annotated[str, checked(_endpoint_name)] | None = _string('name = "local-vllm"')
    output_price: Annotated[Any, checked(_usd_per_million)] = None
    price_as_of: Annotated[Any, checked(_date)] = None
    # How the endpoint's tokens are counted: the provider's usage, else the server's own tokenizer.
    token_count: Literal["usage", "tokenize"] | None = rule("must be one of usage, tokenize")

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo) -> "ProviderTable":
        where = (info.context or {}).get("where")
        missing = [key for key in ("name", "base_url") if not getattr(self, key)]
        if not self.model and not self.models:
            missing.append("model")
        if missing:
            raise refusal(f"{where}: {', '.join(missing)} missing")
        if self.model is not None and self.models is not None:
            raise refusal(f"{where}: give model or models, not both")
        given = [key for key in ("input_price", "output_price") if getattr(self, key) is not None]
        if len(given) == 1:
            raise refusal(f"{where}: give both input_price and output_price (missing "
                          f"{({'input_price', 'output_price'} - set(given)).pop()})")
        return self

    def price(self) -> Price | None:
        if self.input_price is None:
            return None
        return Price(input=self.input_price, output=self.output_price, cached_input=self.cached_input_price,
                     as_of=self.price_as_of or "unknown")


PROVIDER_TABLE_KEYS = frozenset(ProviderTable.model_fields)  # any other key is refused by name (a typo like baseurl)


def checked_table(model: type[_Table], table: Mapping[str, object], where: str) -> dict[str, Any]:
    """The keys `table` sets, checked by `model`; a refusal is one line (refusal.refused)."""
    # A field's declared type is what the file gives (text), its value what the check made of it (a duration's
    # seconds): no serializer warning for that.
    return validated(model, table, where).model_dump(exclude_unset=True, warnings=False)
