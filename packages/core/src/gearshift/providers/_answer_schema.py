"""A `response_schema` whose top level is not an object, carried as `{"value": ...}` and unwrapped.

OpenAI's `response_format` and Anthropic's tool input schemas both take only an object at the top
level (OpenAI: "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'"), while
a caller may ask for a list or a string. Such a schema is sent as an object with one required
`value` property; its `$defs` stay at the top, where the schema's `$ref`s point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["answer_schema", "is_wrapped", "unwrapped_answer", "unwrapped_answer_text"]

_DEFINITIONS = ("$defs", "definitions")


def is_wrapped(schema: Mapping[str, Any]) -> bool:
    """Whether `schema` goes wrapped: its top level is not an object."""
    return schema.get("type") != "object"


def answer_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema to send, and whether it wraps `schema` (whose top level is not an object)."""
    if not is_wrapped(schema):
        return dict(schema), False
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {"value": {k: v for k, v in schema.items() if k not in _DEFINITIONS}},
        "required": ["value"],
        "additionalProperties": False,
    }
    wrapper.update({k: schema[k] for k in _DEFINITIONS if k in schema})
    return wrapper, True


def unwrapped_answer(value: object) -> str:
    """The JSON text of the answer inside a wrapped answer's `value` (a non-object is kept whole)."""
    if isinstance(value, Mapping) and "value" in value:
        value = value["value"]
    return json.dumps(value, ensure_ascii=False)


def unwrapped_answer_text(text: str) -> str:
    """`unwrapped_answer` of a wrapped answer's JSON text; text that is not JSON is kept as it is."""
    try:
        return unwrapped_answer(json.loads(text))
    except json.JSONDecodeError:
        return text
