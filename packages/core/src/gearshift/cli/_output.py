"""What every `gearshift` sub-command does the same way with its outputs and its prompt.

- A file the command will write is checked before any work: its folder must exist, and the path must
  be neither a folder, a device or a pipe, nor a file the command reads (which writing it would
  destroy). A bad one fails at once with one line naming the option and the path (exit 2); gearshift
  never creates a missing folder for it, so a typo in a path cannot scatter files.
- It is written through `replaced_output`: to a temporary file beside it, renamed over it once whole,
  so an interrupted or failed command leaves the old file (or none), never half a file.
- Progress is one mechanism, `Stages`: a rich progress bar on stderr, with a total for every stage,
  shown only when stderr is a terminal (and `--no-progress` is not given); quiet otherwise.
- With `--json`, stdout carries only the JSON: `human_console(as_json)` sends the tables to stderr.
- A prompt argument of `-` is read from stdin; an empty prompt is refused before any routing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .._errors import GearshiftError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Stages", "check_output", "human_console", "read_prompt", "replaced_output"]


def check_output(
    path: Path | None, option: str, *, reads: Mapping[str, str | Path | None] | None = None
) -> None:
    """Raise `GearshiftError` (one line naming `option` and `path`) when `path` cannot be written, or
    is one of the files the command `reads` (option -> path)."""
    if path is None:
        return
    folder = path.expanduser().parent
    if path.is_dir():
        raise GearshiftError(f"{option} {path}: is a folder; give a file path")
    if path.exists() and not path.is_file():
        # A device or a pipe: renamed over, it would be replaced; read back (a batch's journal), it
        # never ends (/dev/full) or never comes (a pipe).
        raise GearshiftError(f"{option} {path}: not a regular file; give a file path")
    if not folder.is_dir():
        raise GearshiftError(f"{option} {path}: the folder {folder} does not exist (create it first)")
    for source_option, source in (reads or {}).items():
        if source is not None and path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise GearshiftError(
                f"{option} {path}: is also the file {source_option} reads, which writing it would "
                "destroy; give another path"
            )


@contextmanager
def replaced_output(path: Path, option: str) -> Iterator[Path]:
    """A temporary path beside `path` to write the whole output to; it replaces `path` in one rename
    when the block ends well, and is removed otherwise. An OS error (no permission, a full disk) is a
    `GearshiftError` naming `option` and `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise GearshiftError(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None
    finally:
        temporary.unlink(missing_ok=True)


def read_prompt(prompt: str) -> str:
    """The prompt argument, or stdin for `-`; an empty or blank prompt is an error (nothing is billed)."""
    prompt = _stdin_text() if prompt == "-" else _utf_8(os.fsencode(prompt), "the prompt argument")
    if not prompt.strip():
        raise GearshiftError("the prompt is empty: pass the text, or - to read it from stdin")
    return prompt


def _stdin_text() -> str:
    """All of stdin as UTF-8 text, decoded here rather than by the locale's stdin: that one raised a
    traceback on other bytes (strict) or passed them on as lone surrogates (C.UTF-8)."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a stdin replaced by text (a test's StringIO) is decoded already
        return sys.stdin.read()
    data: bytes = raw.read()
    return _utf_8(data, "stdin")


def _utf_8(data: bytes, where: str) -> str:
    """`data` decoded as UTF-8, or an error naming `where` it came from and the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GearshiftError(
            f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); convert it "
            "first, for example with iconv -f latin1 -t utf-8"
        ) from None


def human_console(as_json: bool = False, *, min_width: int = 140) -> Console:
    """Where tables and notes for people go: stdout, or stderr when stdout carries `--json`.

    A terminal's own width; elsewhere (a pipe, a file) at least `min_width` columns, so that wide
    tables are not squeezed into rich's default of 80.
    """
    from rich.console import Console

    console = Console(stderr=as_json)
    return console if console.is_terminal else Console(stderr=as_json, width=max(console.width, min_width))


class Stages:
    """A progress bar on stderr for long work, one stage at a time, each with its total.

    Shown only when stderr is a terminal and `enabled`; otherwise every call is a no-op, so a
    command's output in a pipe or a log file stays clean.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        self.shown = enabled and console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self.shown:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> Stages:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def stage(self, description: str, total: int) -> None:
        """Start a stage of `total` units (the previous stage's bar is replaced)."""
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total)

    def counter(self, description: str) -> Callable[[int, int], None]:
        """An `on_progress(done, total)` callback: the first call starts a stage of `total` units."""
        started = False

        def on_progress(done: int, total: int) -> None:
            nonlocal started
            if not started:
                self.stage(description, total)
                started = True
            self.advance()

        return on_progress

    def advance(self, units: int = 1) -> None:
        """Count `units` of the current stage as done."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, units)
