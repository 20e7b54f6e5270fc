"""A prompt file's keys for agent-shaped traffic (turns, tools, tool_choice, expect_tool, tool_results, schema,
think_time_s), checked when the file is read, and how an answer to them is judged (answer_ok, json_valid).

Everything here comes from a prompt file or from a provider's answer, both untrusted: every list, text and nesting
is bounded, a schema's regular expressions run in RE2 (linear time), and judging never raises. Imports nothing of
providers or storage; workloads.py builds the Prompt from what this module reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
import json
import math
import re
from typing import Any, Iterator, Mapping, NamedTuple, Sequence


from .dialogue import ToolCall
from .errors import ConfigError
from .expectations import Expectation
from .textfile import shown

AGENT_KEYS = ("turns", "tools", "tool_choice", "expect_tool", "tool_results", "schema", "think_time_s")
MAX_TURNS = 100  # user turns of one conversation
MAX_TOOLS = 128  # as many as Chat Completions takes
MAX_DEPTH = 64  # nesting of a schema, a tool's parameters, a canned result or expected arguments
# Objects in one schema (or a tool's parameters): OpenAI's structured outputs take at most 5,000 properties. A schema
# of 50,000 properties took a minute to check; this bounds the check to seconds.
MAX_SCHEMA_OBJECTS = 5_000
MAX_THINK_TIME_S = 3600.0
MAX_FOLLOW_UPS = 4  # requests that carry tool results back, per user turn
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_CHOICES = ("auto", "required", "none")


@dataclass(frozen=True)
class Turn:
    """One user message of a conversation, and what its final answer must contain (else the entry's `expect`)."""

    text: str
    expect: Expectation | None = None


@dataclass(frozen=True)
class ExpectedTool:
    """The tool the model should call first, and arguments its call must carry (others allowed)."""

    name: str
    arguments: Mapping[str, Any] | None = None

    def met_by(self, calls: Sequence[ToolCall]) -> bool:
        return any(call.name == self.name and _has_arguments(call, self.arguments) for call in calls)


def _has_arguments(call: ToolCall, wanted: Mapping[str, Any] | None) -> bool:
    if not wanted:
        return True
    sent = _parsed(call)
    return isinstance(sent, dict) and all(key in sent and _same(sent[key], value) for key, value in wanted.items())


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and _canonical(a) == _canonical(b)


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_depth(value: Any, where: str, key: str) -> None:
    if depth(value) > MAX_DEPTH:
        raise ConfigError(f"{where}: {key} nests more than {MAX_DEPTH} levels deep")


def parse_turns(raw: object, where: str) -> tuple[Turn, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: turns must be a non-empty list of messages (text, or {{\"text\", \"expect\"}})")
    if len(raw) > MAX_TURNS:
        raise ConfigError(f"{where}: turns holds {len(raw):,} messages; a conversation has at most {MAX_TURNS}")
    turns = []
    for number, item in enumerate(raw, start=1):
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"text", "expect"})
            if unknown:
                raise ConfigError(f"{where}: turns item {number}: unknown key {shown(unknown[0])}; allowed: text, "
                                  "expect")
            text, expect = item.get("text"), item.get("expect")
        else:
            text, expect = item, None
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: turns item {number} must be text, or an object with \"text\"")
        if expect is not None and (not isinstance(expect, str) or not expect):
            raise ConfigError(f"{where}: turns item {number}: expect must be text (a substring, or /a regular "
                              "expression/)")
        turns.append(Turn(text, Expectation.parse(expect, f"{where}: turns item {number}") if expect else None))
    return tuple(turns)


def parse_think_time(raw: object, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) \
            or not 0 <= raw <= MAX_THINK_TIME_S:
        raise ConfigError(f"{where}: think_time_s must be a number of seconds from 0 to {MAX_THINK_TIME_S:g}")
    return float(raw)


def parse_tools(raw: object, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: tools must be a non-empty list of {{\"type\": \"function\", \"function\": "
                          "{\"name\", \"description\", \"parameters\"}} objects")
    if len(raw) > MAX_TOOLS:
        raise ConfigError(f"{where}: tools holds {len(raw):,} tools; at most {MAX_TOOLS}")
    names: set[str] = set()
    for number, tool in enumerate(raw, start=1):
        at = f"{where}: tools item {number}"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise ConfigError(f"{at} must be {{\"type\": \"function\", \"function\": {{...}}}}")
        if set(tool) - {"type", "function"}:
            raise ConfigError(f"{at}: unknown key {shown(sorted(set(tool) - {'type', 'function'})[0])}")
        function = tool["function"]
        unknown = sorted(set(function) - {"name", "description", "parameters"})
        if unknown:
            raise ConfigError(f"{at}: unknown key {shown(unknown[0])} in function; allowed: name, description, "
                              "parameters")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise ConfigError(f"{at}: name must be 1 to 64 letters, digits, _ or -, not "
                              f"{shown(name) if isinstance(name, str) else type(name).__name__}")
        if name in names:
            raise ConfigError(f"{at}: tool name {name!r} appears twice")
        names.add(name)
        if "description" in function and not isinstance(function["description"], str):
            raise ConfigError(f"{at}: description must be text")
        if "parameters" in function:
            parameters = function["parameters"]
            if not isinstance(parameters, dict):
                raise ConfigError(f"{at}: parameters must be a JSON Schema object")
            check_schema(parameters, f"{at}", "parameters")
    return tuple(raw)


def parse_tool_choice(raw: object, names: Sequence[str], where: str) -> str | dict[str, Any]:
    if raw in TOOL_CHOICES:
        return str(raw)
    function = raw.get("function") if isinstance(raw, dict) else None
    if not (isinstance(raw, dict) and raw.get("type") == "function" and set(raw) == {"type", "function"}
            and isinstance(function, dict) and set(function) == {"name"}):
        raise ConfigError(f"{where}: tool_choice must be 'auto', 'required', 'none' or {{\"type\": \"function\", "
                          "\"function\": {\"name\": ...}}")
    if function["name"] not in names:
        raise ConfigError(f"{where}: tool_choice names {_named(function['name'])}, which is no tool of this entry")
    return raw


def parse_expect_tool(raw: object, names: Sequence[str], where: str) -> ExpectedTool:
    arguments = None
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"name", "arguments"})
        if unknown:
            raise ConfigError(f"{where}: expect_tool: unknown key {shown(unknown[0])}; allowed: name, arguments")
        name, arguments = raw.get("name"), raw.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise ConfigError(f"{where}: expect_tool's arguments must be an object")
        _check_depth(arguments, where, "expect_tool")
    else:
        name = raw
    if not isinstance(name, str):
        raise ConfigError(f"{where}: expect_tool must be a tool's name, or {{\"name\", \"arguments\"}}")
    if name not in names:
        raise ConfigError(f"{where}: expect_tool names {_named(name)}, which is no tool of this entry")
    return ExpectedTool(name, arguments)


def parse_tool_results(raw: object, names: Sequence[str], where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: tool_results must be an object: a tool's name -> its result")
    results = {}
    for name, value in raw.items():
        if name not in names:
            raise ConfigError(f"{where}: tool_results names {_named(name)}, which is no tool of this entry")
        _check_depth(value, where, "tool_results")
        results[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return results


def check_schema(schema: object, where: str, key: str = "schema") -> dict[str, Any]:
    """A JSON Schema that validates answers in bounded time, or a ConfigError naming what is wrong."""
    if not isinstance(schema, dict):
        raise ConfigError(f"{where}: {key} must be a JSON Schema object")
    _check_depth(schema, where, key)
    if sum(1 for _ in _subschemas(schema)) > MAX_SCHEMA_OBJECTS:
        raise ConfigError(f"{where}: {key} holds more than {MAX_SCHEMA_OBJECTS:,} objects: a schema an answer must "
                          "follow, not a corpus")
    import jsonschema  # here, where a file has a schema: with RE2 and referencing, a tenth of a second to import
    from jsonschema.exceptions import SchemaError
    import re2

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"{where}: {key} is not a valid JSON Schema: {shown(exc.message, 200)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: {key} nests too deeply to be checked") from None
    for node in _subschemas(schema):
        if "patternProperties" in node:
            raise ConfigError(f"{where}: {key} uses patternProperties, which this tool does not judge: list the "
                              "properties instead")
        for ref in (node.get(name) for name in ("$ref", "$dynamicRef")):
            if isinstance(ref, str):
                _check_ref(schema, ref, where, key)
        if isinstance(node.get("pattern"), str):
            try:
                re2.compile(node["pattern"], _re2_quiet())
            except re2.error:
                raise ConfigError(f"{where}: {key}'s pattern {shown(node['pattern'])} cannot be matched in linear "
                                  "time (RE2): rewrite it without backreferences or lookaround") from None
    return schema


def _check_ref(schema: dict[str, Any], ref: str, where: str, key: str) -> None:
    """A reference inside the schema that resolves: one to anywhere else (a URL, a file) would have judging fetch it."""
    import referencing.exceptions

    if not ref.startswith("#"):
        raise ConfigError(f"{where}: {key} refers to {shown(ref)}: only references inside the schema (#/...) are "
                          "followed, nothing is fetched")
    try:
        _resolver(schema).lookup(ref)
    except (referencing.exceptions.Unresolvable, referencing.exceptions.Unretrievable):
        raise ConfigError(f"{where}: {key}'s reference {shown(ref)} points to nothing in the schema") from None


def _refuse_retrieval(uri: str) -> Any:
    import referencing.exceptions

    raise referencing.exceptions.NoSuchResource(ref=uri)


@cache
def _registry() -> Any:
    """Where a schema's references are looked up: in the schema only, never fetched (a URL, a file)."""
    import referencing

    return referencing.Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def _resolver(schema: dict[str, Any]) -> Any:
    import referencing.jsonschema

    dialect = schema.get("$schema")
    specification = referencing.jsonschema.specification_with(
        dialect if isinstance(dialect, str) else "", default=referencing.jsonschema.DRAFT202012)
    return _registry().resolver_with_root(specification.create_resource(schema))


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object in a schema (some are no subschema, which is harmless here), without recursion."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _named(name: object) -> str:
    return shown(name) if isinstance(name, str) else repr(type(name).__name__)


# ---- judging -------------------------------------------------------------------------------------------------------

@cache
def _re2_quiet() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would write its own line to stderr; the refusal says it once
    return options


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    import re2
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not re2.compile(pattern, _re2_quiet()).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


def _unique_items(validator: Any, unique: bool, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema import ValidationError

    if unique and validator.is_type(instance, "array"):
        seen = [json.dumps(_canonical(item), sort_keys=True) for item in instance]
        if len(set(seen)) != len(seen):
            yield ValidationError("has non-unique elements")


def _canonical(value: Any) -> Any:
    """A JSON value with whole floats as ints (1.0 is 1 in JSON Schema) and booleans kept apart from numbers."""
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _bounded_validator(schema: Mapping[str, Any]) -> Any:
    """jsonschema's validator for the schema, with its regular expressions in RE2 and uniqueItems in O(n log n)."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    bounded = jsonschema.validators.extend(base, {"pattern": _pattern, "uniqueItems": _unique_items})
    return bounded(schema, registry=_registry())  # nothing fetched: a reference outside the schema resolves to nothing


def schema_valid(text: str | None, schema: Mapping[str, Any]) -> bool | None:
    """Whether an answer's text parses as JSON and follows the schema; never raises, whatever the answer. None when
    the schema itself could not be applied (the file's fault, never the answer's: the checks when it is read keep
    this for what they cannot foresee)."""
    if text is None:
        return False
    try:
        instance = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, digits Python will not convert, or nested past the stack
        return False
    try:
        return bool(_bounded_validator(schema).is_valid(instance))
    except RecursionError:  # an answer nested past the stack: no answer that follows a schema of bounded depth
        return False
    except Exception:  # jsonschema's own errors (an unresolvable reference): not the answer's doing
        return None


def _parsed(call: ToolCall) -> Any:
    try:
        return call.parsed_arguments()
    except (ValueError, RecursionError):
        return _UNPARSED


_UNPARSED = object()


class Judgement(NamedTuple):
    """How one answer is judged: None where nothing of the kind was asked of it."""

    answer_ok: bool | None  # the AND of every check below and of `expect`; false where a call's arguments are no JSON
    json_valid: bool | None  # the answer followed the schema
    tool_ok: bool | None  # the answer called the tool expect_tool names (with its arguments, where given)


def judged(text: str | None, calls: Sequence[ToolCall], *, expect: Expectation | None = None,
           expect_tool: ExpectedTool | None = None, schema: Mapping[str, Any] | None = None) -> Judgement:
    """One answer's Judgement, from the checks given."""
    checks: list[bool] = []
    if expect is not None:
        checks.append(expect.met_by(text))
    tool_ok = expect_tool.met_by(calls) if expect_tool is not None else None
    json_valid = schema_valid(text, schema) if schema is not None else None
    checks += [check for check in (tool_ok, json_valid) if check is not None]
    if calls:
        checks.append(all(_parsed(call) is not _UNPARSED for call in calls))
    return Judgement(all(checks) if checks else None, json_valid, tool_ok)
