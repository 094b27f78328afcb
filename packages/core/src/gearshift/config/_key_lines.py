"""Where each key of a TOML file is written, so a config error can name the line to fix.

`tomllib` keeps no positions, and a config error knows its key (`models[2].tier`) but not where the
file spells it. `key_lines` reads the file's text once, line by line, and maps every table header
(`[routing]`, the third `[[models]]`) and every `key = value` to the line it is on. `line_of` then
finds a key's line, or the line of the nearest table that holds it (a missing key, or one inside an
inline table). It reads the common shapes of a config file; a line it cannot read is skipped, never
guessed, so the worst outcome is an error without a line number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["KeyPath", "key_lines", "line_of"]

KeyPath = tuple[str | int, ...]
"""A key as a config error names it: `("models", 2, "tier")` for `models[2].tier`."""

_BARE = r"[A-Za-z0-9_-]+"
_PART = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_SPLIT = re.compile(_PART)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every table and key the text writes, by key path, with its 1-based line (the first, if repeated)."""
    found: dict[KeyPath, int] = {}
    counts: dict[KeyPath, int] = {}  # arrays of tables: how many `[[...]]` so far
    table: KeyPath = ()
    in_string: str | None = None  # the quotes of a multi-line string being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER.match(line)
        if header:
            parts = _parts(header.group(2))
            if header.group(1) == "[[":
                table = (*_resolve(parts[:-1], counts), parts[-1])
                counts[table] = counts.get(table, 0) + 1
                table = (*table, counts[table] - 1)
            else:
                table = _resolve(parts, counts)
            found.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            found.setdefault((*table, *_parts(assign.group(1))), number)
            rest = line[assign.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2 == 1:
                    in_string = quotes
    return found


def line_of(lines: Mapping[KeyPath, int], key: Sequence[str | int]) -> int | None:
    """The line of `key`, else of the nearest enclosing key or table the text writes, else None."""
    path = tuple(key)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _parts(dotted: str) -> list[str]:
    return [part.strip("\"'") for part in _SPLIT.findall(dotted)]


def _resolve(parts: Sequence[str], counts: Mapping[KeyPath, int]) -> KeyPath:
    """A header's path, with the current element of every array of tables it passes through:
    `[routing.rules.when]` after the second `[[routing.rules]]` is `routing.rules[1].when`."""
    path: KeyPath = ()
    for part in parts:
        path = (*path, part)
        if path in counts:
            path = (*path, counts[path] - 1)
    return path
