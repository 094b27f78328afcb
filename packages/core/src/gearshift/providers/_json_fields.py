"""Fields of an API's JSON answer, read as leniently as the SDKs read them.

A missing or null field is absent; only a value of another type than the field must have is an error
(`ValueError`, which the provider reports as a response it could not read). The direct paths hand the
answers over as the JSON objects they arrived as, so the providers read them with these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["field", "json_object"]


def json_object(value: Any, where: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else `ValueError` naming `where` it was."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    return value


def field(body: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    """`body[name]`, or None when it is absent or null; a value of another type is an error."""
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"'{name}' is a {type(value).__name__}, not a {kind.__name__}")
    return value
