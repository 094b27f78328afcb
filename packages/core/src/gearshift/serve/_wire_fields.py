"""Reading a JSON request body field by field, with errors that name the field's path. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from .._errors import InvalidRequestError
from .._messages import SAMPLING_SETTINGS
from .._surrogates import lone_surrogate

__all__ = [
    "SAMPLING",
    "check_fields",
    "field_error",
    "located",
    "lone_surrogate",
    "optional",
    "required",
    "string_map",
]

T = TypeVar("T")

_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def field_error(path: str, problem: str) -> InvalidRequestError:
    """An `InvalidRequestError` whose message starts with the quoted field path (the 400's `param`)."""
    return InvalidRequestError(f"'{path}': {problem}")


SAMPLING = {name: name for name in ("temperature", *SAMPLING_SETTINGS)}
"""The sampling settings a `ChatRequest` checks, each named by the body field of the same name."""


def located(exc: InvalidRequestError, fields: Mapping[str, str]) -> InvalidRequestError:
    """A `ChatRequest`'s error as a field error when its message starts with a key of `fields`
    (the value is the body's field path), so the 400 names the field, in the message's words too
    (it said "'max_output_tokens': max_tokens must be positive"); else `exc` itself."""
    text = str(exc)
    for start, path in fields.items():
        if text.startswith(start):
            return field_error(path, path + text[len(start) :] if start.isidentifier() else text)
    return exc


def _is(value: Any, kind: type[Any]) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def optional(body: Mapping[str, Any], name: str, kind: type[T], path: str = "") -> T | None:
    """`body[name]` when present and not null, checked to be of `kind`."""
    value = body.get(name)
    if value is None:
        return None
    if not _is(value, kind):
        raise field_error(
            f"{path}{name}", f"must be {_NAMES.get(kind, kind.__name__)}, got {_json_type(value)}"
        )
    if isinstance(value, float) and not math.isfinite(value):  # 1e400 reads as inf
        raise field_error(f"{path}{name}", f"must be a finite number, got {value}")
    return value  # type: ignore[no-any-return]


def required(body: Mapping[str, Any], name: str, kind: type[T], path: str = "") -> T:
    """`body[name]`, which must be present and of `kind`."""
    value = optional(body, name, kind, path)
    if value is None:
        raise field_error(f"{path}{name}", "is required")
    return value


def string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """`body[name]`, an object of strings (OpenAI's `metadata`), or {} when absent. A value of another
    type was skipped unseen, and with it an `agent_id` the call should have been charged to."""
    found = optional(body, name, dict) or {}
    for key, value in found.items():
        if not isinstance(value, str):
            raise field_error(f"{name}.{key}", f"must be a string, got {_json_type(value)}")
    return found


def check_fields(body: Mapping[str, Any], known: frozenset[str], path: str = "") -> None:
    """Refuse a field the API does not define, as the APIs themselves do."""
    for name in body:
        if name not in known:
            raise field_error(f"{path}{name}", "unrecognized request argument")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in _NAMES.items():
        if kind is not bool and isinstance(value, kind):
            return name
    return type(value).__name__
