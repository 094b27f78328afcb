"""Deterministic example values for a JSON schema.

The simulated model uses them as tool arguments and as JSON answers, so they must validate: required
properties are present, `const` and `enum` are honoured (the first enum value is taken), numbers and
strings keep to their bounds, `$ref`, `anyOf`/`oneOf`/`allOf`, nested objects and arrays are followed.
Optional properties are left out, which keeps the values minimal and still valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["example_from_schema"]

_MAX_DEPTH = 12  # recursive schemas (a tree of nodes) stop here with the smallest valid value
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def example_from_schema(schema: Mapping[str, Any], *, name: str = "") -> Any:
    """A value that validates against `schema`; `name` (a property name) flavours example strings."""
    return _value(schema, schema, name, 0)


def _value(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            chosen = next((o for o in options if _resolve(o, root).get("type") != "null"), options[0])
            return _value(chosen, root, name, depth + 1)
    if schema.get("allOf"):
        return _all_of(schema, root, name, depth)
    kind = _type(schema)
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, name, depth)
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        return _integer(schema)
    if kind == "number":
        return _number(schema)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"example {name}".strip()  # an empty schema accepts anything


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while "$ref" in schema and seen < _MAX_DEPTH:
        ref = str(schema["$ref"])
        target: Any = root
        if not ref.startswith("#"):
            return {}  # remote references cannot be followed offline
        for part in ref.lstrip("#").strip("/").split("/"):
            if part:
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        schema = target if isinstance(target, Mapping) else {}
        seen += 1
    return schema


def _type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None and "properties" in schema:
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return str(kind) if kind is not None else None


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    if depth >= _MAX_DEPTH:
        return {}
    required = [str(r) for r in schema.get("required", [])]
    return {key: _value(properties.get(key, {}), root, key, depth + 1) for key in required}


def _all_of(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> Any:
    values = [_value(part, root, name, depth + 1) for part in schema["allOf"]]
    rest = {k: v for k, v in schema.items() if k != "allOf"}
    if rest.get("properties") or rest.get("required"):
        values.append(_value(rest, root, name, depth + 1))
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, Any] = {}
        for value in values:
            merged.update(value)
        return merged
    return values[0]


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> list[Any]:
    prefix = list(schema.get("prefixItems", []))
    items = schema.get("items", {})
    low = int(schema.get("minItems", 0))
    high = schema.get("maxItems")
    count = max(low, len(prefix), 1)
    if high is not None:
        count = min(count, int(high))
    if depth >= _MAX_DEPTH:
        count = min(count, low)
    out: list[Any] = []
    for i in range(count):
        item_schema = prefix[i] if i < len(prefix) else (items if isinstance(items, Mapping) else {})
        value = _value(item_schema, root, name, depth + 1)
        if schema.get("uniqueItems") and value in out:
            value = _distinct(value, i)
        out.append(value)
    return out


def _distinct(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return f"{value} {i}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + i
    return value


def _string(schema: Mapping[str, Any], name: str) -> str:
    text = _FORMATS.get(str(schema.get("format", "")), f"example {name}".strip())
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None:
        text = text[: int(high)]
    return text


def _integer(schema: Mapping[str, Any]) -> int:
    low, high = _bounds(schema, step=1)
    value = 1
    if low is not None:
        value = max(value, math.ceil(low))
    if high is not None:
        value = min(value, math.floor(high))
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0 and value % step:
        value += step - value % step
    return value


def _number(schema: Mapping[str, Any]) -> float:
    low, high = _bounds(schema, step=0.5)
    value = 1.5
    if low is not None:
        value = max(value, float(low))
    if high is not None:
        value = min(value, float(high))
    return value


def _bounds(schema: Mapping[str, Any], *, step: float) -> tuple[float | None, float | None]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)) and not isinstance(
        schema["exclusiveMinimum"], bool
    ):
        low = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("exclusiveMaximum"), (int, float)) and not isinstance(
        schema["exclusiveMaximum"], bool
    ):
        high = schema["exclusiveMaximum"] - step
    return low, high
