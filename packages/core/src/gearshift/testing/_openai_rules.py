"""Rules the real Chat Completions API enforces on a request body, which `LocalOpenAIServer` enforces too.

Only rules confirmed from the API's own 400 answers are here, each refused with the API's wording, so
a request the real API would refuse fails in tests instead of in production:

- a message `name` or a tool's function name outside `^[a-zA-Z0-9_-]+$`;
- a tool's function description over 1,024 characters, or an array in its parameters without `items`;
- an assistant message with null (or no) content and no tool calls;
- an image in a message whose role is not `user`;
- a `json_schema` response format whose schema is not an object at the top.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["request_refusal"]

_DESCRIPTION_LIMIT = 1024
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_PATTERN = "string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."


def request_refusal(body: Mapping[str, Any]) -> str | None:
    """The message the real API's 400 answer would carry for `body`, or None if it would take it."""
    for index, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str) and not _NAME.match(name):
            return f"Invalid 'tools[{index}].function.name': {_PATTERN}"
        context = _itemless_array(function.get("parameters"), ()) if isinstance(function, Mapping) else None
        if context is not None:
            return (
                f"Invalid schema for function '{name}': In context={context!r}, array schema missing items."
            )
        description = function.get("description") if isinstance(function, Mapping) else None
        if isinstance(description, str) and len(description) > _DESCRIPTION_LIMIT:
            return (
                f"Invalid 'tools[{index}].function.description': string too long. Expected a string "
                f"with maximum length {_DESCRIPTION_LIMIT}, but got a string with length "
                f"{len(description)} instead."
            )
    response_format = body.get("response_format")
    json_schema = response_format.get("json_schema") if isinstance(response_format, Mapping) else None
    json_schema = json_schema if isinstance(json_schema, Mapping) else {}
    schema = json_schema.get("schema")
    if isinstance(schema, Mapping) and schema.get("type") != "object":
        return (
            f"Invalid schema for response_format '{json_schema.get('name')}': schema must be a JSON "
            f"Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
        )
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, Mapping):
            continue
        name = message.get("name")
        if isinstance(name, str) and not _NAME.match(name):
            return f"Invalid 'messages[{index}].name': {_PATTERN}"
        content = message.get("content")
        if message.get("role") != "user" and _has_image(content):
            return (
                f"Invalid 'messages[{index}]'. Image URLs are only allowed for messages with role "
                f"'user', but this message with role '{message.get('role')}' contains an image URL."
            )
        if (
            message.get("role") == "assistant"
            and message.get("content") is None
            and not message.get("tool_calls")
        ):
            return "Invalid value for 'content': expected a string, got null."
    return None


def _has_image(content: Any) -> bool:
    parts = content if isinstance(content, list) else ()
    return any(isinstance(part, Mapping) and part.get("type") == "image_url" for part in parts)


def _itemless_array(schema: Any, context: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where in `schema` an array schema leaves `items` out (OpenAI's `context` tuple), if anywhere."""
    if isinstance(schema, list):
        found = (_itemless_array(item, (*context, str(i))) for i, item in enumerate(schema))
        return next((place for place in found if place is not None), None)
    if not isinstance(schema, Mapping):
        return None
    kinds = schema.get("type")
    if (kinds == "array" or (isinstance(kinds, list) and "array" in kinds)) and "items" not in schema:
        return context
    for key, value in schema.items():
        if key in ("enum", "const", "default", "examples"):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            for name, sub in value.items():
                place = _itemless_array(sub, (*context, key, name))
                if place is not None:
                    return place
        else:
            place = _itemless_array(value, (*context, key))
            if place is not None:
                return place
    return None
