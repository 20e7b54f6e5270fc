"""What a request asks beyond its text (tools, a tool choice, a JSON Schema for the answer), and what the simulated
model answers to it: one call of a tool with arguments valid against the tool's parameters, or a JSON object valid
against the schema, as pieces of text sent a token at a time. Everything here is deterministic: the same request gets
the same answer.

Each API's module reads its own request into an `Asked`; `planned` decides the answer:
- tools offered, a tool choice that allows a call, and the conversation's last entry the user's (not a tool's
  result: after a result the model answers with text, so that an agent loop ends): one call of the tool the choice
  names, else of the first tool whose name appears in the last user message, else of the first tool;
- else a schema: the JSON object `example` makes of it;
- else nothing: the profile's words.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
import re
from typing import Any, Mapping

from .exchange import words

PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")  # a token of JSON text, with the spaces before it
MAX_DEPTH = 12  # how deep `example` follows nested or recursive schemas
OPTIONAL_DEPTH = 2  # objects this shallow get their optional properties too; deeper ones only the required
MAX_ITEMS = 3  # an array's items, unless its minItems asks for more
MAX_VALUES = 10_000  # the values one example makes at most (references can multiply a small schema's size)
MAX_LENGTH = 10_000  # a string's characters, an array's items, an object's properties, at most
SIGNATURE = "c2ltdWxhdGVk"  # a call's thoughtSignature (Gemini; opaque to clients, sent back with the call)
FORMATS = {
    "date-time": "2025-10-01T00:00:00Z", "date": "2025-10-01", "time": "00:00:00Z", "email": "user@example.com",
    "uri": "https://example.com/", "url": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com", "ipv4": "127.0.0.1",
}


@dataclass(frozen=True)
class Asked:
    """What one request asks, whatever its API."""

    entries: int = 0  # the conversation's entries as sent (messages, contents or input items), the system apart
    tools: tuple[tuple[str, Any], ...] = ()  # (name, parameters as a JSON Schema) of each function tool offered
    choice: str | None = None  # 'none' | 'auto' | 'required' | a tool's name; None: the API's default (auto)
    after_result: bool = False  # the last entry carries a tool's result
    last_user: str = ""  # the last user message's text
    schema: Any = None  # the JSON Schema the answer must follow; None: none asked


@dataclass(frozen=True)
class Call:
    name: str
    arguments: str  # the arguments' JSON text, whole
    call_id: str


@dataclass(frozen=True)
class Planned:
    """The answer decided: a call (pieces: the name's event, "", then its arguments' text) or JSON text (pieces)."""

    call: Call | None
    pieces: tuple[str, ...]

    def text(self, start: int, end: int) -> str:
        return "".join(self.pieces[start:end])


def planned(asked: Asked, request_id: str) -> Planned | None:
    """The answer to what the request asks (see the module's docstring); None for a plain text answer."""
    if asked.tools and asked.choice != "none" and not asked.after_result:
        offered = dict(asked.tools)
        named = [name for name, _ in asked.tools if name in asked.last_user]
        name = asked.choice if asked.choice in offered else (named or [asked.tools[0][0]])[0]
        parameters = offered[name] if isinstance(offered[name], dict) else {}
        arguments = json.dumps(example({"type": "object", **parameters}))
        return Planned(Call(name, arguments, f"call_{request_id}"), ("", *pieces(arguments)))
    if asked.schema is not None:
        return Planned(None, pieces(json.dumps(example(asked.schema))))
    return None


def response_schema(response_format: object) -> object:
    """The JSON Schema a response_format (Chat's, or Responses' text.format) asks for; None for plain text."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    if response_format.get("type") != "json_schema":
        return None
    inner = response_format.get("json_schema", response_format)  # Chat nests it; Responses does not
    schema = inner.get("schema") if isinstance(inner, dict) else None
    return schema if isinstance(schema, dict) else {}


def pieces(text: str) -> tuple[str, ...]:
    """JSON text in token-sized pieces that join back into it."""
    return tuple(PIECE.findall(text))


def example(schema: Any) -> Any:
    """A value valid against `schema` (a JSON Schema, or Gemini's Schema with its upper-case types): an enum's first
    value, a const, the first non-null option of an anyOf/oneOf, all of an allOf merged; an object with its required
    properties (and, near the top, its optional ones too), an array of minItems (at least one) items, a string from
    `format` or of words within its lengths, a number within its bounds. Not honoured: `pattern`, `not`,
    if/then/else, dependencies. Bounded whatever the schema: MAX_DEPTH deep, MAX_VALUES values, MAX_LENGTH long
    strings and arrays (a schema that asks for more gets an answer that does not validate)."""
    return _Maker(schema).value(schema, 0, 0)


class _Maker:
    """One example's making: its schema's root (for references) and how many values it has left to make."""

    def __init__(self, root: Any) -> None:
        self.root, self.left = root, MAX_VALUES

    def value(self, schema: Any, depth: int, nth: int) -> Any:
        """A value for `schema`; `nth` varies an array's items (uniqueItems)."""
        self.left -= 1
        if not isinstance(schema, Mapping) or depth > MAX_DEPTH or self.left < 0:
            return None
        if isinstance(schema.get("$ref"), str):
            return self.value(_resolved(self.root, schema["$ref"]), depth + 1, nth)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            options = [option for option in schema.get(key) or () if isinstance(option, Mapping)]
            if options:
                typed = [option for option in options if _type(option) != "null"] or options
                return self.value(typed[0], depth + 1, nth)
        if isinstance(schema.get("allOf"), list):
            return self.value(_merged(schema, self.root), depth + 1, nth)
        kind = _type(schema)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind in ("integer", "number"):
            return _number(schema, kind, nth)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema, nth)

    def object(self, schema: Mapping, depth: int) -> dict:
        properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        required = [name for name in schema.get("required") or () if isinstance(name, str)]
        names = [name for name in properties if name in required or depth < OPTIONAL_DEPTH]
        names += [name for name in required if name not in properties]
        extra = schema.get("additionalProperties")
        made = {}
        for name in names[:MAX_LENGTH]:
            made[name] = self.value(properties.get(name, extra if isinstance(extra, Mapping) else {}), depth + 1, 0)
        return made

    def array(self, schema: Mapping, depth: int) -> list:
        least = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        count = min(max(1, least, len(prefix)), max(MAX_ITEMS, least), MAX_LENGTH)
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        return [self.value(prefix[i] if i < len(prefix) else items, depth + 1, i) for i in range(count)]


def _type(schema: Mapping) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()
    if "properties" in schema or "required" in schema:
        return "object"
    return "array" if "items" in schema or "prefixItems" in schema else "string"


def _resolved(root: Any, ref: str) -> Any:
    """A local reference (#/$defs/x, #/definitions/x, #): the schema it points to, else None."""
    if not ref.startswith("#"):
        return None
    node = root
    for part in ref[1:].strip("/").split("/") if ref[1:].strip("/") else ():
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _merged(schema: Mapping, root: Any) -> dict:
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    for part in schema["allOf"]:
        part = _resolved(root, part["$ref"]) if isinstance(part, Mapping) and "$ref" in part else part
        if not isinstance(part, Mapping):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _number(schema: Mapping, kind: str, nth: int) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + 1
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - 1
    value: int | float = (low if isinstance(low, (int, float)) else 1) + nth
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = math.ceil(value / step) * step
    if isinstance(high, (int, float)) and value > high:
        value = high
    return math.ceil(value) if kind == "integer" else value


def _string(schema: Mapping, nth: int) -> str:
    text = FORMATS.get(str(schema.get("format")), words(nth, nth + 2).strip())
    least, most = schema.get("minLength"), schema.get("maxLength")
    if isinstance(least, int) and len(text) < least:
        text += "x" * (min(least, MAX_LENGTH) - len(text))
    return text[:most] if isinstance(most, int) else text
