"""SQLiteStore beyond the contract: the file outlives the process, bad files are named, locks time out."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gearshift._errors import LedgerUnavailable
from gearshift.budgets import LimitCheck, UsageQuery, open_store
from gearshift.budgets._sqlite import SCHEMA_VERSION, SQLiteStore
from gearshift.budgets._sqlite_file import open_ledger_file

NOW = 1_700_000_000.0


def cap(key: str, usd: float) -> list[LimitCheck]:
    return [LimitCheck("cap", key, 0.0, usd, None, True)]


async def test_spend_and_live_reservations_survive_closing_and_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEARSHIFT_HOME", str(tmp_path / "home"))
    path = tmp_path / "home" / "nested" / "folder" / "budgets.db"  # in the data folder: folders are created
    first = SQLiteStore(path)
    await first.commit("c1", ["agent:a", "run:1"], 0.25, 1000, now=NOW)
    assert (await first.reserve("r1", ["agent:a"], 0.5, 10, [], now=NOW, expires_at=NOW + 60)).ok
    await first.aclose()

    again = SQLiteStore(path)
    try:
        (usage,) = await again.usage([UsageQuery("agent:a", 0.0)], now=NOW + 1)
        assert (usage.spent_usd, usage.spent_tokens, usage.reserved_usd) == (0.25, 1000, 0.5)
        assert await again.keys() == ("agent:a", "run:1")
        await again.commit("c1", ["agent:a", "run:1"], 0.25, 1000, now=NOW + 2)  # counted once, still
        (usage,) = await again.usage([UsageQuery("agent:a", 0.0)], now=NOW + 61)
        assert (usage.spent_usd, usage.reserved_usd) == (0.25, 0.0)
    finally:
        await again.aclose()


async def test_the_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.db")
    await store.keys()
    await store.aclose()
    db = sqlite3.connect(tmp_path / "budgets.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT component, version FROM gearshift_schema").fetchall() == [
            ("budgets", SCHEMA_VERSION)
        ]
    finally:
        db.close()


async def test_money_is_summed_exactly(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.db")
    try:
        for i in range(1000):
            await store.commit(f"c{i}", ["k"], 0.001, 0, now=NOW)
        (usage,) = await store.usage([UsageQuery("k", 0.0)], now=NOW)
        assert usage.spent_usd == 1.0  # a float sum of 1000 x 0.001 would be 1.0000000000000007
        assert (await store.reserve("fits", ["k"], 0.0, 0, cap("k", 1.0), now=NOW, expires_at=NOW + 1)).ok
        refused = await store.reserve("over", ["k"], 1e-9, 0, cap("k", 1.0), now=NOW, expires_at=NOW + 1)
        assert not refused.ok  # one nano-dollar over is over
    finally:
        await store.aclose()


async def test_a_corrupt_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    store = SQLiteStore(path)
    with pytest.raises(LedgerUnavailable) as caught:
        await store.usage([UsageQuery("k", 0.0)], now=NOW)
    assert str(path) in str(caught.value)
    assert "not a usable gearshift budget ledger" in str(caught.value)
    assert caught.value.url == f"sqlite:///{path}"
    await store.aclose()


async def test_another_database_is_refused_rather_than_written_into(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    with pytest.raises(LedgerUnavailable, match=r"not a gearshift budget ledger .*users"):
        await store.commit("c1", ["k"], 0.1, 0, now=NOW)
    await store.aclose()
    db = sqlite3.connect(path)
    assert [row[0] for row in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")] == ["users"]
    db.close()


async def test_a_ledger_from_a_newer_gearshift_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"
    store = SQLiteStore(path)
    await store.keys()
    await store.aclose()
    db = sqlite3.connect(path)
    db.execute("UPDATE gearshift_schema SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    store = SQLiteStore(path)
    with pytest.raises(LedgerUnavailable, match=f"version {SCHEMA_VERSION + 1}"):
        await store.keys()
    await store.aclose()


async def test_a_lock_held_too_long_is_an_error_and_the_loop_keeps_running(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"
    setup = SQLiteStore(path)
    await setup.keys()
    await setup.aclose()
    other = sqlite3.connect(path, isolation_level=None)  # another process, as far as SQLite knows
    other.execute("BEGIN IMMEDIATE")
    store = SQLiteStore(path, busy_timeout=0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(LedgerUnavailable, match="locked"):
            await store.reserve("r1", ["k"], 0.1, 0, [], now=NOW, expires_at=NOW + 1)
        assert ticks >= 10  # the wait ran in a worker thread: the event loop went on meanwhile
    finally:
        ticker.cancel()
        other.execute("ROLLBACK")
        other.close()
    assert (await store.reserve("r1", ["k"], 0.1, 0, [], now=NOW, expires_at=NOW + 1)).ok
    await store.aclose()


async def test_open_store_reopens_a_store_from_its_url(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.db")
    await store.commit("c1", ["k"], 0.5, 0, now=NOW)
    await store.aclose()
    assert store.url == f"sqlite:///{tmp_path / 'budgets.db'}"
    reopened = open_store(store.url)
    try:
        assert isinstance(reopened, SQLiteStore)
        assert reopened.path == store.path
        (usage,) = await reopened.usage([UsageQuery("k", 0.0)], now=NOW)
        assert usage.spent_usd == 0.5
    finally:
        await reopened.aclose()


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.db")
    await store.keys()
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(LedgerUnavailable, match="closed"):
        await store.keys()


async def test_work_queued_together_commits_together_and_a_failing_piece_is_undone_alone(
    tmp_path: Path,
) -> None:
    """The file's thread runs queued work in one transaction, each piece in a savepoint."""
    ledger = open_ledger_file((tmp_path / "budgets.db").absolute(), 30.0)
    statements: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def hold_the_thread(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE t (n INTEGER)")
        db.set_trace_callback(statements.append)  # from here on, every statement the thread runs
        started.set()
        gate.wait(10)

    def insert(n: int) -> Callable[[sqlite3.Connection], int]:
        def work(db: sqlite3.Connection) -> int:
            db.execute("INSERT INTO t VALUES (?)", (n,))
            if n == 13:
                raise ValueError("unlucky")  # after its insert: its savepoint must undo it
            return n

        return work

    try:
        held = asyncio.ensure_future(ledger.write(hold_the_thread))
        await asyncio.to_thread(started.wait, 10)
        pieces = [asyncio.ensure_future(ledger.write(insert(n))) for n in range(30)]
        await asyncio.sleep(0.05)  # every piece is queued behind the held thread
        gate.set()
        await held
        outcomes = await asyncio.gather(*pieces, return_exceptions=True)
        assert isinstance(outcomes[13], ValueError)
        assert [o for i, o in enumerate(outcomes) if i != 13] == [n for n in range(30) if n != 13]
        assert statements.count("COMMIT") == 2  # the held transaction, then all 30 pieces in one
        rows = await ledger.read(lambda db: [n for (n,) in db.execute("SELECT n FROM t ORDER BY n")])
        assert rows == [n for n in range(30) if n != 13]
    finally:
        gate.set()
        await ledger.close()


async def test_stores_of_one_process_share_the_file_and_close_it_last(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "budgets.db"), SQLiteStore(tmp_path / "budgets.db")
    await first.commit("c1", ["k"], 0.25, 0, now=NOW)
    await first.aclose()  # the other store still has the file open
    (usage,) = await second.usage([UsageQuery("k", 0.0)], now=NOW)
    assert usage.spent_usd == 0.25
    await second.aclose()
