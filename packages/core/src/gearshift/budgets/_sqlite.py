"""`SQLiteStore`: the embedded ledger store, one file shared safely by every process on a host.

Each reserve and commit runs in a `BEGIN IMMEDIATE` transaction: it takes the database's write lock
before reading, so two processes can never both read the same spend and both pass a check only one
of them fits (no lost updates). The file, its WAL journal, the thread that runs the SQL off the
event loop and the group commit are `_sqlite_file`'s; this module is the SQL of each store step.

The layout keeps each transaction to few pages (every page a write transaction touches is written
to the WAL): a reserve writes one table; a commit four. Money is integer nano-dollars and spend is
summed from running totals, hour and minute buckets and the rows themselves (see `_spend_index`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from .._errors import LedgerUnavailable
from ..config._data_dir import check_folder
from ._spend_index import (
    HOUR,
    LIFETIME,
    MINUTE,
    bucket_starts,
    first_refusal,
    from_nano,
    split_window,
    to_nano,
)
from ._sqlite_file import SCHEMA_VERSION, LedgerFile, open_ledger_file
from ._store import KeyUsage, LimitCheck, ReserveResult, UsageQuery

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

# A key's spend (from the rows `{spent}` selects) and what its reservations live at :now hold.
_USAGE = """
SELECT spent.usd, spent.tok, held.usd, held.tok FROM
    (SELECT coalesce(sum(usd_nano), 0) AS usd, coalesce(sum(tokens), 0) AS tok FROM ({spent})) AS spent,
    (SELECT coalesce(sum(usd_nano), 0) AS usd, coalesce(sum(tokens), 0) AS tok FROM reservations
     WHERE key = :key AND expires_at > :now) AS held
"""
_LIFETIME_USAGE = _USAGE.format(
    spent=f"SELECT usd_nano, tokens FROM buckets WHERE key = :key AND width = {LIFETIME}"
)
# Exact: the rows of the window's first minute, then minute and hour buckets (`split_window`).
_WINDOW_USAGE = _USAGE.format(
    spent=f"""
    SELECT usd_nano, tokens FROM spends WHERE key = :key AND at >= :since AND at < :rows
    UNION ALL SELECT usd_nano, tokens FROM buckets
        WHERE key = :key AND width = {MINUTE} AND start >= :rows AND start < :minutes
    UNION ALL SELECT usd_nano, tokens FROM buckets
        WHERE key = :key AND width = {HOUR} AND start >= :minutes
    """
)
_ADD_TO_BUCKET = (
    "INSERT INTO buckets VALUES (?, ?, ?, ?, ?) ON CONFLICT (key, width, start) DO UPDATE "
    "SET usd_nano = usd_nano + excluded.usd_nano, tokens = tokens + excluded.tokens"
)


class SQLiteStore:
    """A `BudgetStore` in one SQLite file, safe across threads and processes on one host.

    The schema is created on first use, and so is the folder when it is inside gearshift's own data
    folder; any other folder must exist, as the decision log's must (a typo in a path is refused when
    the store is built, a `ConfigError` on `path` naming the folder, and creates nothing; a folder
    removed later is `LedgerUnavailable` on the next call). A file that is not a gearshift budget
    ledger (another database, a corrupt or truncated file) is refused with `LedgerUnavailable` naming
    it, and so is a write lock not obtained within `busy_timeout` seconds.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self._path = Path(path).expanduser().absolute()
        # Found now, like a named journal's folder: on first use it would read as a store that is down.
        check_folder(self._path, what="the budget store", key="path")
        self._busy_timeout = busy_timeout
        self._file: LedgerFile | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def url(self) -> str:
        """`sqlite:///` followed by the absolute path (so `sqlite:////var/...`)."""
        return f"sqlite:///{self._path}"

    # -- the BudgetStore protocol ---------------------------------------------------------------

    async def reserve(
        self,
        reservation_id: str,
        keys: Sequence[str],
        usd: float,
        tokens: int,
        checks: Sequence[LimitCheck],
        *,
        now: float,
        expires_at: float,
    ) -> ReserveResult:
        """Forget expired reservations, check, and reserve against every key: one write transaction."""
        usd_nano = to_nano(usd)
        rows = [(key, reservation_id, usd_nano, tokens, expires_at) for key in dict.fromkeys(keys)]

        def work(db: sqlite3.Connection) -> ReserveResult:
            # Reserving an id again replaces it (as MemoryStore does), never adds to it.
            db.execute(
                "DELETE FROM reservations WHERE expires_at <= ? OR reservation_id = ?",
                (now, reservation_id),
            )
            usages = tuple(_usage(db, check.key, check.since, now) for check in checks)
            refused = first_refusal(checks, usages, usd_nano, tokens)
            if refused is None:
                db.executemany("INSERT INTO reservations VALUES (?, ?, ?, ?, ?)", rows)
            return ReserveResult(ok=refused is None, usage=usages, refused_by=refused)

        return await self._ledger_file().write(work)

    async def commit(
        self, reservation_id: str, keys: Sequence[str], usd: float, tokens: int, *, now: float
    ) -> None:
        """Record the spend against every key and drop the reservation, once per reservation id."""
        usd_nano = to_nano(usd)
        minute, hour = bucket_starts(now)
        unique = list(dict.fromkeys(keys))
        spends = [(key, now, reservation_id, usd_nano, tokens) for key in unique]
        buckets = [
            (key, width, start, usd_nano, tokens)
            for key in unique
            for width, start in ((LIFETIME, 0), (MINUTE, minute), (HOUR, hour))
        ]

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM reservations WHERE reservation_id = ?", (reservation_id,))
            if not db.execute("INSERT OR IGNORE INTO commits VALUES (?, ?)", (reservation_id, now)).rowcount:
                return  # committed before: counting it again would double the spend
            db.executemany("INSERT INTO spends VALUES (?, ?, ?, ?, ?)", spends)
            db.executemany(_ADD_TO_BUCKET, buckets)

        await self._ledger_file().write(work)

    async def renew(self, reservation_id: str, *, now: float, expires_at: float) -> bool:
        """Move the reservation's expiry on every key, if it is still live at `now`."""

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE reservations SET expires_at = ? WHERE reservation_id = ? AND expires_at > ?",
                (expires_at, reservation_id, now),
            )
            return cursor.rowcount > 0

        return await self._ledger_file().write(work)

    async def release(self, reservation_id: str) -> None:
        """Drop the reservation (if still there) without recording spend."""

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM reservations WHERE reservation_id = ?", (reservation_id,))

        await self._ledger_file().write(work)

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        """Every query's spend and live reservations, read in one snapshot."""

        def work(db: sqlite3.Connection) -> tuple[KeyUsage, ...]:
            return tuple(_usage(db, query.key, query.since, now) for query in queries)

        return await self._ledger_file().read(work)

    async def keys(self) -> tuple[str, ...]:
        """Every key with recorded spend or a reservation not yet forgotten, sorted."""

        def work(db: sqlite3.Connection) -> tuple[str, ...]:
            rows = db.execute(
                f"SELECT key FROM buckets WHERE width = {LIFETIME} "
                "UNION SELECT key FROM reservations ORDER BY key"
            ).fetchall()
            return tuple(row[0] for row in rows)

        return await self._ledger_file().read(work)

    async def reset(self, key: str) -> None:
        """Forget the key's spend (totals, buckets, rows) and its share of every reservation."""

        def work(db: sqlite3.Connection) -> None:
            for table in ("buckets", "spends", "reservations"):
                db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

        await self._ledger_file().write(work)

    async def aclose(self) -> None:
        """Let go of the file (the last store of the process to do so closes it). Idempotent; the
        store cannot be used afterwards."""
        with self._lock:
            ledger_file, self._file = self._file, None
            self._closed = True
        if ledger_file is not None:
            await ledger_file.close()

    def _ledger_file(self) -> LedgerFile:
        with self._lock:
            if self._closed:
                raise LedgerUnavailable(self.url, "the store is closed")
            if self._file is None or not self._file.serving:
                self._file = open_ledger_file(self._path, self._busy_timeout)
            return self._file


def _usage(db: sqlite3.Connection, key: str, since: float, now: float) -> KeyUsage:
    """Spend of `key` since `since` and what its reservations live at `now` hold."""
    split = split_window(since)
    if split is None:
        row = db.execute(_LIFETIME_USAGE, {"key": key, "now": now}).fetchone()
    else:
        params = {
            "key": key,
            "now": now,
            "since": split.since,
            "rows": split.rows_until,
            "minutes": split.minutes_until,
        }
        row = db.execute(_WINDOW_USAGE, params).fetchone()
    return KeyUsage(
        key=key,
        since=since,
        spent_usd=from_nano(row[0]),
        spent_tokens=row[1],
        reserved_usd=from_nano(row[2]),
        reserved_tokens=row[3],
    )
