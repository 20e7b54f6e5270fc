"""benchmark.toml's [[providers]], [slo] and [alerts] as pydantic models; one function turns a refusal into a line.

Imported only where benchmark.toml is read, never at the command line's import: pydantic costs `--help` time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from .model import ALERT_RULES
from .toml_file import toml_kind, unknown_key

# The outage rule reads this many newest results of each provider and model at every evaluation: a bound keeps that
# read small (and the number within what a database's LIMIT takes).
MAX_CONSECUTIVE_FAILURES = 10_000


def _rule(rule: str, example: str = "", type_rule: str = "", **constraints: Any) -> Any:
    """A table key: `rule` ends every message about its value ("must be more than 0"); `type_rule`, when given,
    ends the message about a value of the wrong TOML type, which then names the type instead of the value. A key
    with no `rule` has only a type to check, and its value is never printed (api_key_env, headers may hold keys)."""
    return Field(None, json_schema_extra={"rule": rule, "example": example, "type_rule": type_rule}, **constraints)


def _number(rule: str, example: str, **constraints: Any) -> Any:
    return _rule(rule, example, f"must be a number, like {example}", **constraints)


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
    percentile: int | None = _rule("must be a whole number from 1 to 99, like percentile = 90", ge=1, le=99)


def _known_rules(rules: list[str]) -> list[str]:
    unknown = [r for r in rules if r not in ALERT_RULES]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; rules: {', '.join(ALERT_RULES)}")
    return rules


_RULES_LIST = 'must be a list of rule names, like rules = ["outage", "slo_breach"]'


class AlertsTable(_Table):
    """The [alerts] table; the durations stay text here, read by durations.parse_duration after."""

    rules: Annotated[list[str], AfterValidator(_known_rules)] | None = _rule(_RULES_LIST, type_rule=_RULES_LIST)
    consecutive_failures: int | None = _rule(f"must be a whole number from 1 to {MAX_CONSECUTIVE_FAILURES:,}",
                                             ge=1, le=MAX_CONSECUTIVE_FAILURES)
    window: str | None = _rule("", type_rule='must be a duration in quotes, like window = "1h"')
    baseline: str | None = _rule("", type_rule='must be a duration in quotes, like baseline = "1h"')
    regression_threshold: float | None = _number("is a fraction more than 0, like 0.2 for 20 %",
                                                 "regression_threshold = 0.2", gt=0)


def _string(example: str) -> Any:
    return _rule("", type_rule=f"must be one string in quotes, like {example}")


class ProviderTable(_Table):
    """One [[providers]] table: its keys and their TOML types; endpoints.py checks what the values mean.

    The keys are in the order an unknown key's message lists them: alphabetical."""

    # The API the endpoint speaks (settings/apis.py APIS).
    api: Literal["chat_completions", "responses", "messages", "generate_content"] | None = _rule(
        "must be one of chat_completions, responses, messages, generate_content",
        type_rule='must be one string in quotes, like api = "responses"')
    api_key_env: str | None = _string('api_key_env = "VLLM_API_KEY"')
    base_url: str | None = _string('base_url = "http://127.0.0.1:8000/v1"')
    # Prices and price_as_of take several TOML types each (a string, a number; a string, a date): endpoints.py reads
    # them with their own messages.
    cached_input_price: Any = None
    headers: dict[str, Any] | None = _rule("", type_rule="must be a table of name = value")
    input_price: Any = None
    model: str | None = _string('model = "llama3.2"')
    models: list[str] | None = _rule("", type_rule='must be a list of model names, like ["llama3.2", "qwen3"]')
    name: str | None = _string('name = "local-vllm"')
    output_price: Any = None
    price_as_of: Any = None
    # How the endpoint's tokens are counted: the provider's usage, else the server's own tokenizer.
    token_count: Literal["usage", "tokenize"] | None = _rule("must be one of usage, tokenize")


PROVIDER_TABLE_KEYS = frozenset(ProviderTable.model_fields)  # any other key is refused by name (a typo like baseurl)


def checked_table(model: type[_Table], table: Mapping[str, object], where: str) -> dict[str, Any]:
    """The keys `table` sets, checked by `model`; a refusal is one line naming where, the key, the value (these
    tables hold no secrets) and a good value, with "did you mean" for an unknown key."""
    try:
        return model.model_validate(table).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise refused(exc, model, table, where) from None


def refused(exc: ValidationError, model: type[_Table], table: Mapping[str, object], where: str) -> ConfigError:
    """The one place a pydantic refusal becomes today's message: the first bad key in the file's order."""
    order = list(table)
    error = min(exc.errors(), key=lambda e: order.index(e["loc"][0]) if e["loc"][0] in order else len(order))
    key = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        return unknown_key(key, tuple(model.model_fields), where)
    what, value, kind = f"{where}: {key}", table[key], error["type"]
    extra = model.model_fields[key].json_schema_extra
    assert isinstance(extra, dict)
    if kind == "value_error":
        return ConfigError(f"{what}: {error['ctx']['error']}")
    if kind == "finite_number":
        return ConfigError(f"{what} must be a finite number, like {extra['example']}, not {value}")
    if extra["rule"] == "" or (kind.endswith("_type") and extra["type_rule"]):
        # An item of a list of the wrong type: the list itself is the right type, so its type is not named.
        named = "" if len(error["loc"]) > 1 else f", not {toml_kind(value)}"
        return ConfigError(f"{what} {extra['type_rule']}{named}")
    return ConfigError(f"{what} {extra['rule']}, not {value!r}")
