"""Why a tool call's arguments were refused, in words the calling model can act on.

pydantic's own text names the SDK's internal argument model (`routeArguments`), shows what was sent
as a Python repr (`input_value='3', input_type=str`) and links to pydantic's web site. Here each
problem is one clause: where (`constraints.max_tier`, `tool_history[0].name`), what is wrong, and
what was sent, written as JSON and cut short (an argument may be a whole document).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

__all__ = ["argument_problems"]

_SHOWN_CHARS = 60
_NO_INPUT = frozenset({"missing", "value_error", "assertion_error"})
_WORDS = {
    "missing": "is required",
    "string_unicode": "holds a lone UTF-16 surrogate (half of a character, such as an emoji cut in two); "
    "send whole characters",
}


def argument_problems(error: ValidationError) -> str:
    """`error` (a tool's arguments failing validation) as one line per problem, without Python reprs."""
    problems = []
    for detail in error.errors(include_url=False, include_context=False):
        where = _where(detail["loc"])
        what = _WORDS.get(detail["type"]) or detail["msg"].removeprefix("Value error, ")
        if detail["type"] not in _NO_INPUT:
            what = f"{what}, got {_shown(detail['input'])}"
        problems.append(f"{where}: {what}" if where else what)
    return "invalid arguments: " + "; ".join(problems)


def _where(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=not _encodable(value))
        if len(text) > _SHOWN_CHARS:
            text = f'{text[: _SHOWN_CHARS - 1]}..." ({len(value)} characters)'
        return f"the string {text}"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}"
    return "an object" if isinstance(value, dict) else "a value of another type"


def _encodable(text: str) -> bool:
    # A lone surrogate is shown escaped: no JSON encoder writes one raw, so the reply could not be sent.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
