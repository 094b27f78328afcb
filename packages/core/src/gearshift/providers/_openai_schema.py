"""A JSON schema as OpenAI takes it, or a clear refusal naming where it cannot.

OpenAI refuses an array schema without `items` in any tool ("Invalid schema for function
'filesystem_read_multiple_files': In context=('properties', 'paths'), array schema missing items."),
which MCP servers' tools often have: such an array gets `items: {}` (any item), which it means.

With `strict: true` (a tool's, or a `response_format`'s) OpenAI refuses a schema in which an object
leaves out `additionalProperties: false` or does not list every property in `required` ("Invalid
schema for function 'x': In context=(), 'additionalProperties' is required to be supplied and to be
false" / "'required' is required to be supplied and to be an array including every key in
properties. Missing 'params'."). The first is added where a schema leaves it out (strict output has
no extra properties either way). An optional property or an open object changes what the model may
answer, so it is refused here, naming the place, rather than by the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import InvalidRequestError

__all__ = ["openai_schema"]

_VALUES = frozenset({"enum", "const", "default", "examples"})  # JSON values, not schemas
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})


def openai_schema(schema: Mapping[str, Any], where: str, *, strict: bool) -> dict[str, Any]:
    """`schema` with `items: {}` on each array schema that leaves `items` out and, when `strict`,
    `additionalProperties: false` on each object schema that leaves it out.

    With `strict`, raises `InvalidRequestError` naming `where` and the place in the schema for an
    object whose properties are not all required or whose `additionalProperties` is not false.
    """
    out: dict[str, Any] = _walk(schema, where, (), strict)
    return out


def _walk(node: Any, where: str, path: tuple[str, ...], strict: bool) -> Any:
    if isinstance(node, list):
        return [_walk(item, where, (*path, str(i)), strict) for i, item in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _VALUES:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):  # names to schemas, not a schema
            out[key] = {name: _walk(sub, where, (*path, key, name), strict) for name, sub in value.items()}
        else:
            out[key] = _walk(value, where, (*path, key), strict)
    kinds = out.get("type")
    if (kinds == "array" or (isinstance(kinds, list) and "array" in kinds)) and "items" not in out:
        out["items"] = {}
    if not strict:
        return out
    properties = out.get("properties")
    if out.get("type") == "object" or isinstance(properties, Mapping):
        place = f"{where}, at {'.'.join(path) or 'the top'}"
        if out.setdefault("additionalProperties", False) is not False:
            raise InvalidRequestError(
                f"{place}: OpenAI's strict mode needs additionalProperties false on every object; "
                "describe the properties, or leave strict unset"
            )
        required = out.get("required") or []
        optional = [name for name in properties or {} if name not in required]
        if optional:
            raise InvalidRequestError(
                f"{place}: OpenAI's strict mode needs every property required, and "
                f"{', '.join(repr(n) for n in optional)} is not; list it in required (a type that "
                'admits "null" keeps it optional), or leave strict unset'
            )
    return out
