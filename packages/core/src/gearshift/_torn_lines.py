"""The torn last line of an append-only JSONL file: what a process killed mid-write leaves behind.

Both the decision log and the batch journal are appended to one line at a time. A process stopped
while writing a line leaves it without its newline; the next writer's first line would be glued to it,
and the glued line would make the file unreadable from there on. Writers cut that tail before they
append (`drop_torn_line`); readers skip an unterminated last line, as a live writer may be finishing it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["drop_torn_line"]

_CHUNK = 65536


def drop_torn_line(path: Path) -> int:
    """Cut whatever follows the last newline of `path` (nothing when the file ends with one, or does not
    exist); returns how many bytes were cut."""
    if not path.exists():
        return 0
    with path.open("rb+") as handle:
        end = cut = handle.seek(0, os.SEEK_END)
        while cut > 0:
            start = max(0, cut - _CHUNK)
            handle.seek(start)
            newline = handle.read(cut - start).rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            cut = start
        if cut < end:
            handle.truncate(cut)
        return end - cut
