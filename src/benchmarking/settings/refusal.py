"""How a pydantic refusal becomes one line: the one place for the environment's schema and benchmark.toml's tables.

Imported only where settings are read (it imports pydantic), never at the command line's import.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from ..errors import ConfigError
from .toml_file import toml_kind, unknown_key


def rule(rule: str, example: str = "", type_rule: str = "", **constraints: Any) -> Any:
    """A field whose refusals refused() words: `rule` ends every message about its value ("must be more than 0");
    `type_rule`, when given, ends the message about a value of the wrong TOML type, which then names the type instead
    of the value. A field with no `rule` has only a type to check, and its value is never printed (api_key_env,
    headers may hold keys)."""
    return Field(None, json_schema_extra={"rule": rule, "example": example, "type_rule": type_rule}, **constraints)


def subject(info: ValidationInfo) -> str:
    """What a message names: a variable by its name, a table's key after where the table is (the context's `where`)."""
    where = (info.context or {}).get("where")
    return f"{where}: {info.field_name}" if where else str(info.field_name)


def checked(check: Callable[[Any, str], Any], before: bool = False) -> AfterValidator | BeforeValidator:
    """A validator calling `check(value, subject)`, one of the settings' own checks (URLs, keys, names): its
    ConfigError, which names the subject and never the value of a secret, is the message as it stands. `before`:
    the check reads the value as given (text) and returns it as the field's type."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, subject(info))
        except ConfigError as exc:
            raise PydanticCustomError("refused", "{line}", {"line": str(exc)}) from None

    return BeforeValidator(validate) if before else AfterValidator(validate)


def refusal(line: str) -> PydanticCustomError:
    """A refusal from a model validator (a rule over several keys): `line` is the whole message."""
    return PydanticCustomError("refused", "{line}", {"line": line})


def validated(model: type[BaseModel], given: Mapping[str, object], where: str | None = None,
              **context: object) -> BaseModel:
    """`given` checked by `model` (`where`: the file and table, None for the environment), or the first refusal."""
    try:
        return model.model_validate(given, context={"where": where, **context})
    except ValidationError as exc:
        raise refused(exc, model, given, where) from None


def refused(exc: ValidationError, model: type[BaseModel], given: Mapping[str, object], where: str | None
            ) -> ConfigError:
    """The first refusal in the order `given` is written (the file's, or the order the variables are read in), as
    one line naming where, the key, the value where it is no secret, and a good value; "did you mean" for an
    unknown key. A field says its rule in json_schema_extra (see rule()); one with none never shows its value."""
    order = list(given)

    def position(error: Any) -> int:
        key = error["loc"][0] if error["loc"] else None
        return order.index(key) if key in order else len(order) if key is not None else -1

    error = min(exc.errors(), key=position)
    if error["type"] == "refused":
        return ConfigError(error["ctx"]["line"])
    key = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        return unknown_key(key, tuple(model.model_fields), str(where))
    what, value, kind = f"{where}: {key}" if where else key, given[key], error["type"]
    extra = model.model_fields[key].json_schema_extra
    if not isinstance(extra, dict):  # a value the schema checks only by its type: never printed
        return ConfigError(f"{what} is not valid here: see docs/configuration.md")
    if kind == "value_error":
        return ConfigError(f"{what}: {error['ctx']['error']}")
    if kind == "finite_number":
        return ConfigError(f"{what} must be a finite number, like {extra['example']}, not {value}")
    if extra["rule"] == "" or (kind.endswith("_type") and extra["type_rule"]):
        # An item of a list of the wrong type: the list itself is the right type, so its type is not named.
        named = "" if len(error["loc"]) > 1 else f", not {toml_kind(value)}"
        return ConfigError(f"{what} {extra['type_rule']}{named}")
    return ConfigError(f"{what} {extra['rule']}, not {value!r}")
