"""A tool's input schema as MCP clients read it: an optional argument is advertised with its own type.

pydantic writes an optional argument (`int | None = None`) as `anyOf: [{type: integer}, {type: null}]`
with `default: null`. Clients that build a form or convert typed text from the schema read a
property's `type`, which that shape lacks: the Inspector CLI sends `--tool-arg step_index=3` as the
string "3", which the strict argument model refuses, and a form shows a bare text box. Leaving the
argument out is how a caller does not set it, so the schema names the one type; the argument model
still takes an explicit null.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plain_optionals"]

_NULL = {"type": "null"}
_DEFS = "#/$defs/"


def plain_optionals(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each property that defaults to null written as its one non-null type (in place,
    for the top-level arguments and the properties of every `$defs` object)."""
    defs: dict[str, Any] = schema.get("$defs", {})
    for holder in (schema, *defs.values()):
        properties = holder.get("properties", {})
        for name, prop in properties.items():
            properties[name] = _plain(prop, defs)
    return schema


def _plain(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    branches = prop.get("anyOf")
    if not isinstance(branches, list) or "default" not in prop or prop["default"] is not None:
        return prop
    kept = [branch for branch in branches if branch != _NULL]
    if len(kept) != 1 or len(kept) == len(branches):
        return prop
    (only,) = kept
    ref = only.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS) and "type" not in only:
        # A reference alone has no `type`; its target's says what to send (an object).
        target = defs.get(ref.removeprefix(_DEFS), {})
        if "type" in target:
            only = {**only, "type": target["type"]}
    return {**only, **{key: value for key, value in prop.items() if key not in ("anyOf", "default")}}
