"""Finding lone UTF-16 surrogates (U+D800-U+DFFF on their own): Python strings and JSON let them
through (`json.loads('"\\ud800"')`), but they are no text, no encoder writes them and no model can be
sent them. The core's request validation and the proxy's body check both look for them here. Pure."""

from __future__ import annotations

from typing import Any

__all__ = ["has_lone_surrogate", "lone_surrogate"]

_MAX_KEPT = 1024
_MAX_KEPT_CHARACTERS = 4096
_clean: set[str] = set()
"""Non-ASCII texts found free of lone surrogates: an agent sends its whole history on every step, and
the same text (the same string) is looked up, not encoded again. Only texts of up to
`_MAX_KEPT_CHARACTERS` are kept (16 MB at the very most), and past `_MAX_KEPT` it starts over: a
process reading long documents must not hold a thousand of them."""


def has_lone_surrogate(text: str) -> bool:
    """Whether `text` holds a lone surrogate (ASCII text, the common case, is answered at once)."""
    if text.isascii() or text in _clean:
        return False
    try:  # UTF-8 encoding, in C, is several times faster than a regex search, and refuses exactly these
        text.encode()
    except UnicodeEncodeError:
        return True
    if len(text) <= _MAX_KEPT_CHARACTERS:
        if len(_clean) >= _MAX_KEPT:
            _clean.clear()
        _clean.add(text)
    return False


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string (value or key) in a parsed JSON `value` that holds a lone UTF-16
    surrogate, or None: JSON lets `"\\ud800"` through, but it is no text and no model can be sent it."""
    if isinstance(value, str):
        return path if has_lone_surrogate(value) else None
    if isinstance(value, dict):
        names = ((ascii(k) if has_lone_surrogate(k) else k, k, v) for k, v in value.items())
        items: Any = ((f"{path}.{name}" if path else name, k, v) for name, k, v in names)
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", "", v) for i, v in enumerate(value))
    else:
        return None
    for where, key, item in items:
        found = where if has_lone_surrogate(key) else lone_surrogate(item, where)
        if found is not None:
            return found
    return None
