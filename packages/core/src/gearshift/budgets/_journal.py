"""`SpendJournal`: spend the store could not take, kept on local disk until it can.

When a commit cannot reach the store (Redis down, SQLite locked past its timeout), the answer was
already paid for: the ledger writes the spend here instead (one JSON line, fsynced) and the caller
keeps its answer. The next ledger call that finds the store answering replays the journal into it;
a replay is idempotent because each line carries its reservation id and every store records a
commit of one id once. A process killed mid-replay leaves the lines in place, to be replayed again.

One journal file belongs to one store: next to a SQLite ledger (`budgets.db.pending-spend.jsonl`),
else in the user's data folder under a name drawn from the store's URL (without its password) and
key prefix. As for the decision log, only a folder inside gearshift's own data folder is created; any
other journal's folder must exist (`config._data_dir.prepare_folder`). Every process on the host
shares it, under an advisory lock (`<journal>.lock`) held only for a read, an append or a rewrite,
never while the store is being called.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config._data_dir import data_dir, prepare_folder

__all__ = ["JournaledSpend", "SpendJournal", "default_journal_path"]

_SUFFIX = ".pending-spend.jsonl"


@dataclass(frozen=True, slots=True)
class JournaledSpend:
    """One commit the store could not take: the reservation it settles, its keys, what it cost, and
    when (Unix seconds, the time its spend counts at once replayed)."""

    reservation_id: str
    keys: tuple[str, ...]
    usd: float
    tokens: int
    at: float

    def to_line(self) -> str:
        """The JSON line the journal keeps."""
        record = {"id": self.reservation_id, "keys": list(self.keys), "usd": self.usd, "tokens": self.tokens}
        return json.dumps({**record, "at": self.at}, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> JournaledSpend | None:
        """The record on `line`, or None for a line that is not one (a write cut short by a crash)."""
        try:
            raw = json.loads(line)
            spend = cls(
                str(raw["id"]),
                tuple(str(key) for key in raw["keys"]),
                float(raw["usd"]),
                int(raw["tokens"]),
                float(raw["at"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
        if not (
            spend.usd >= 0 and math.isfinite(spend.usd) and spend.tokens >= 0 and math.isfinite(spend.at)
        ):
            return None
        return spend


def default_journal_path(store_url: str, *, sqlite_path: Path | None = None, prefix: str = "") -> Path:
    """Where a store's journal lives: next to a SQLite file, else in the user's data folder."""
    if sqlite_path is not None:
        return sqlite_path.with_name(sqlite_path.name + _SUFFIX)
    digest = hashlib.sha256(f"{store_url}\n{prefix}".encode()).hexdigest()[:16]
    return data_dir() / "pending-spend" / f"{digest}{_SUFFIX}"


class SpendJournal:
    """The journal file of one store (see the module docstring). Its methods block on the disk:
    the ledger calls them off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"SpendJournal({str(self.path)!r})"

    def maybe_pending(self) -> bool:
        """Whether the file has anything in it (one `stat`; cheap enough for every call)."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def append(self, spend: JournaledSpend) -> None:
        """Add one record and make it durable (fsync) before returning; raises `OSError` if not."""
        created = not self.path.exists()
        if created:
            prepare_folder(self.path)
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                line = spend.to_line().encode("utf-8")
                if size and _last_byte(fd, size) != b"\n":  # a line a crash cut short
                    line = b"\n" + line  # stays apart from this one (it is skipped as it was)
                try:
                    _write_all(fd, line)
                    os.fsync(fd)
                except OSError:
                    # A full disk takes part of a line: take it back, or the next record would join it.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)
        if created:
            _sync_folder(self.path.parent)

    def pending(self) -> tuple[JournaledSpend, ...]:
        """Every record not yet replayed, oldest first."""
        if not self.maybe_pending():  # no file (perhaps no folder yet): nothing to read, nothing to lock
            return ()
        with self._locked():
            return tuple(self._read())

    def forget(self, reservation_ids: Sequence[str]) -> None:
        """Drop the records of `reservation_ids` (replayed): the rest is rewritten, atomically."""
        done = set(reservation_ids)
        if not done:
            return
        with self._locked():
            rest = [spend for spend in self._read() if spend.reservation_id not in done]
            if not rest:
                with contextlib.suppress(FileNotFoundError):
                    os.truncate(self.path, 0)
                return
            temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, "".join(spend.to_line() for spend in rest).encode("utf-8"))
                os.fsync(fd)
            except OSError:  # the journal stays as it was: its records are replayed again, once each
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            _sync_folder(self.path.parent)

    def _read(self) -> Iterator[JournaledSpend]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        seen: set[str] = set()
        for line in text.splitlines():
            spend = JournaledSpend.from_line(line)
            if spend is not None and spend.reservation_id not in seen:
                seen.add(spend.reservation_id)
                yield spend

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the journal's lock file (an advisory `flock`, where the platform has it)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: appends are whole lines; rewrites race
            yield
            return
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock


def _last_byte(fd: int, size: int) -> bytes:
    """The file's last byte (a seek and a read, as Windows has no `pread`; appends go to the end
    whatever the offset)."""
    os.lseek(fd, size - 1, os.SEEK_SET)
    return os.read(fd, 1)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data`: a disk short of room writes part of it and returns the count, and the
    write of the rest raises `OSError` (ENOSPC, EFBIG)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:
            raise OSError(errno.ENOSPC, "no room left for the journal's record")
        view = view[written:]


def _sync_folder(folder: Path) -> None:
    """Make a new or renamed entry of `folder` durable (where the platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
