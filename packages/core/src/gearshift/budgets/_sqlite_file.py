"""One budget-ledger SQLite file as seen from this process: its connection, its thread, its schema.

Every store of a process that opens the same file shares one `LedgerFile`: one thread owning one
connection runs their work in order, so the event loop never waits on the disk or on the lock,
and threads of one process never compete with each other for SQLite's lock (only processes do).

Work that queues up while the thread is busy runs together in one `BEGIN IMMEDIATE` transaction
(a group commit), each piece in its own savepoint: a piece that fails is undone alone, the others
commit, and nobody hears back before the COMMIT. Every piece still runs whole and alone under the
write lock, so batching weakens no check; it only shares one lock hand-over and one WAL write
among several callers.

The journal is WAL: readers never wait for the writer, and a process killed mid-transaction leaves
the file as it was before that transaction. `synchronous=NORMAL` keeps that guarantee against a
killed process (not against a power cut, which may lose the last commits). Checkpoints (copying the
WAL into the file, with fsyncs) run every `_CHECKPOINT_EVERY` writes, never inside a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .._errors import LedgerUnavailable
from ..config._data_dir import prepare_folder

__all__ = ["SCHEMA_VERSION", "LedgerFile", "open_ledger_file"]

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]

SCHEMA_VERSION = 1
"""The layout this gearshift writes; a file with a newer one is refused rather than misread."""

# `buckets` holds each key's running total (width 0), hour and minute buckets; `spends` every spend
# with its time; `commits` every committed reservation id (a second commit is ignored).
# `reservations` holds only live (and recently expired) reservations, so it stays small: deletes by
# id scan it rather than keep a second index that every reserve and commit would have to write.
_SCHEMA = f"""
CREATE TABLE gearshift_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO gearshift_schema VALUES ('budgets', {SCHEMA_VERSION});
CREATE TABLE buckets (
    key TEXT NOT NULL, width INTEGER NOT NULL, start INTEGER NOT NULL,
    usd_nano INTEGER NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (key, width, start)
) WITHOUT ROWID;
CREATE TABLE spends (
    key TEXT NOT NULL, at REAL NOT NULL, reservation_id TEXT NOT NULL,
    usd_nano INTEGER NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (key, at, reservation_id)
) WITHOUT ROWID;
CREATE TABLE commits (reservation_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE reservations (
    key TEXT NOT NULL, reservation_id TEXT NOT NULL,
    usd_nano INTEGER NOT NULL, tokens INTEGER NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (key, reservation_id)
) WITHOUT ROWID
"""

_BATCH = 64  # most pieces of work one transaction takes
_CHECKPOINT_EVERY = 200  # write transactions between WAL checkpoints

_files: dict[tuple[Path, float], LedgerFile] = {}
_files_lock = threading.Lock()


def open_ledger_file(path: Path, busy_timeout: float) -> LedgerFile:
    """This process's `LedgerFile` for `path`, shared by every store that opens it; `close` it."""
    with _files_lock:
        ledger = _files.get((path, busy_timeout))
        if ledger is None or not ledger.serving:
            ledger = _files[(path, busy_timeout)] = LedgerFile(path, busy_timeout)
        ledger.users += 1
        return ledger


@dataclass(eq=False)
class _Job:
    work: Work
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = field(default=(False, None))

    def deliver(self) -> None:
        """Hand the outcome to the caller's event loop (if it still runs)."""
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody to tell
            self.loop.call_soon_threadsafe(_settle, self.future, *self.outcome)


def _settle(future: asyncio.Future[Any], failed: bool, value: Any) -> None:
    if future.cancelled():
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


class LedgerFile:
    """The thread and connection of one ledger file in this process (see the module docstring)."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.users = 0
        self.stopped = False
        self._pid = os.getpid()
        self._busy_timeout = busy_timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._db: sqlite3.Connection | None = None
        self._writes = 0
        self._thread = threading.Thread(target=self._serve, name=f"gearshift-ledger:{path.name}", daemon=True)
        self._thread.start()

    @property
    def serving(self) -> bool:
        """Whether the thread takes work: not after `close`, nor in a child forked after it started
        (the child has no such thread, and must not use the parent's connection)."""
        return not self.stopped and self._pid == os.getpid()

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside a write transaction (taken before it reads: `BEGIN IMMEDIATE`)."""
        return await self._submit(work, write=True)  # type: ignore[no-any-return]

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside a read transaction: all it reads is one snapshot."""
        return await self._submit(work, write=False)  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Drop one user; the last one stops the thread and closes the connection."""
        with _files_lock:
            self.users -= 1
            if self.users > 0 or self.stopped:
                return
            self.stopped = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join, 10)

    async def _submit(self, work: Work, *, write: bool) -> Any:
        if not self.serving:  # nothing would ever run the work
            raise self._error("the ledger file is closed")
        loop = asyncio.get_running_loop()
        job = _Job(work, write, loop, loop.create_future())
        self._jobs.put(job)
        return await job.future

    # -- the thread -----------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < _BATCH:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                self._run([job for job in batch if job.write], write=True)
                for job in batch:
                    if not job.write:
                        self._run([job], write=False)
                if stop:
                    return
        finally:
            if self._db is not None:
                self._db.close()

    def _run(self, jobs: list[_Job], *, write: bool) -> None:
        if not jobs:
            return
        try:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except (sqlite3.Error, OSError, LedgerUnavailable) as exc:
            self._fail(jobs, exc)
            return
        alone = len(jobs) == 1
        try:
            for job in jobs:
                # A savepoint per piece when several share the transaction: one failing is undone alone.
                if not alone:
                    db.execute("SAVEPOINT piece")
                try:
                    job.outcome = (False, job.work(db))
                except Exception as exc:
                    job.outcome = (True, self._translate(exc))
                    if alone:
                        raise
                    db.execute("ROLLBACK TO piece")
                if not alone:
                    db.execute("RELEASE piece")
            db.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            failure = self._translate(exc)
            for job in jobs:
                if not job.outcome[0]:
                    job.outcome = (True, failure)
        for job in jobs:
            job.deliver()
        if write:
            self._writes += 1
            if self._writes % _CHECKPOINT_EVERY == 0:
                with contextlib.suppress(sqlite3.Error):  # another process may be checkpointing
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _fail(self, jobs: list[_Job], exc: BaseException) -> None:
        failure = self._translate(exc)
        for job in jobs:
            job.outcome = (True, failure)
            job.deliver()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = self._connect()
            try:
                self._prepare(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _connect(self) -> sqlite3.Connection:
        try:
            prepare_folder(self.path)  # only gearshift's own data folder is created
        except FileNotFoundError as exc:
            raise self._error(str(exc.strerror)) from None
        # isolation_level=None: the transactions are the explicit BEGIN IMMEDIATE / BEGIN.
        db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA wal_autocheckpoint = 0")  # see `_run`: never inside a commit
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Create the schema in an empty file, or check an existing file is a ledger this code reads."""
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            if not tables:
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
            elif "gearshift_schema" not in tables:
                raise self._error(
                    f"{self.path} is not a gearshift budget ledger (it holds the tables "
                    f"{', '.join(sorted(tables))}); point the budget store at another file"
                )
            else:
                row = db.execute(
                    "SELECT version FROM gearshift_schema WHERE component = 'budgets'"
                ).fetchone()
                if row is None or row[0] > SCHEMA_VERSION:
                    found = "no budgets schema" if row is None else f"budgets schema version {row[0]}"
                    raise self._error(
                        f"{self.path} has {found}; this gearshift reads budget ledgers up to version "
                        f"{SCHEMA_VERSION}"
                    )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def _translate(self, exc: BaseException) -> BaseException:
        """What the caller hears: `LedgerUnavailable` naming the file for any database fault."""
        if isinstance(exc, LedgerUnavailable) or not isinstance(exc, (sqlite3.Error, OSError)):
            return exc
        if isinstance(exc, OSError):
            return self._error(f"cannot open {self.path}: {exc}")
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
            return self._error(f"{self.path} stayed locked for more than {self._busy_timeout:g} s ({exc})")
        if isinstance(exc, sqlite3.OperationalError):
            # Read-only files or folders, a full disk, I/O errors: the ledger itself is fine, so the
            # advice must never be to replace it (that would lose the spend it records).
            return self._error(
                f"cannot use {self.path} ({exc}); check that this user may read and write the file and "
                "its folder (SQLite writes its journal next to it) and that the disk has room; the "
                "spend recorded in the file is intact"
            )
        if isinstance(exc, sqlite3.DatabaseError):
            return self._error(
                f"{self.path} is not a usable gearshift budget ledger ({exc}); it may be corrupt or "
                "another kind of file: restore it from a backup, or move it aside (keep it: it holds "
                "the spend recorded so far) and gearshift starts a new, empty ledger"
            )
        return self._error(str(exc))

    def _error(self, reason: str) -> LedgerUnavailable:
        return LedgerUnavailable(self.url, reason)
