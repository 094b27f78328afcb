"""Texts written from tool-call arguments, kept per argument values for the next step that asks again.

An agent's history holds every tool call of the run so far, and the adapters read it whole on every
step: each call's arguments are written as the JSON its provider is sent (`ToolCall.with_arguments`)
and hashed for the step context (`hash_arguments`), although only the latest calls are new. Both
writings are kept here, per argument values, when those values alone decide the text: a flat dict
with string keys whose values are strings, ints, bools or None, keyed by each key, value and exact type
in order (True, 1 and 1.0 are equal in Python and not in JSON, so the type is part of the key; floats
are left out, as -0.0 equals 0.0). Anything else is written every time. Bounded: arguments whose keys
and string values run over `_MAX_CHARACTERS` in all are not kept (a file's content passed to a tool),
and past `_MAX_KEPT` texts the store starts over rather than grow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ArgumentTexts", "flat_key"]

_MAX_KEPT = 1024
_MAX_CHARACTERS = 2000
_FLAT_TYPES = frozenset({str, int, bool, type(None)})

FlatKey = tuple[tuple[str, type, Any], ...]


def flat_key(arguments: object) -> FlatKey | None:
    """A key that equals another's only for arguments that write the same JSON; None when the
    arguments are not a flat dict of strings, ints, bools and None under string keys, or are long."""
    if type(arguments) is not dict:
        return None
    key = []
    size = 0
    for name, value in arguments.items():
        kind = type(value)
        if type(name) is not str or kind not in _FLAT_TYPES:
            return None
        size += len(name) + (len(value) if kind is str else 0)
        key.append((name, kind, value))
    return tuple(key) if size <= _MAX_CHARACTERS else None


class ArgumentTexts:
    """`write(arguments)`, kept per `flat_key` of the arguments (see the module docstring)."""

    def __init__(self, write: Callable[[Mapping[str, Any]], str]) -> None:
        self._write = write
        self._kept: dict[FlatKey, str] = {}

    def __call__(self, arguments: Mapping[str, Any]) -> str:
        """The text `write` gives for `arguments`."""
        key = flat_key(arguments)
        if key is None:
            return self._write(arguments)
        text = self._kept.get(key)
        if text is None:
            text = self._write(arguments)
            if len(self._kept) >= _MAX_KEPT:
                self._kept.clear()
            self._kept[key] = text
        return text
