"""A caller cancelled while the ledger is at work loses no spend and leaves no hold behind.

Cancellation is how callers give up: a timeout around an agent step, a client that hangs up on
`gearshift serve`, speculative routing dropping its fast call at the verdict. The store may be slow
to answer just then (Redis reconnecting after a restart, SQLite's write queued behind others), and
the store's work may already be under way. Real stores only: a `redis-server` restarted on its port,
a SQLite file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from pathlib import Path

import pytest

from gearshift.budgets import BudgetLedger, BudgetLimit
from gearshift.budgets._redis import RedisStore
from gearshift.budgets._sqlite import SQLiteStore
from gearshift.testing._redis import LocalRedisServer

KEYS = ("agent:a", "run:1")
LIMIT = BudgetLimit(key="run:*", usd=1.0)


async def spent_and_held(ledger: BudgetLedger, key: str = "run:1") -> tuple[float, float]:
    (usage,) = await ledger.usage([key])
    return round(usage.spent_usd, 9), round(usage.reserved_usd, 9)


def redis_ledger(url: str, *, prefix: str | None = None, ttl: float = 600) -> BudgetLedger:
    """A ledger on the Redis server at `url`, under a prefix of its own unless one is given."""
    store = RedisStore(url, prefix=prefix or f"gearshift-test-{uuid.uuid4().hex}:")
    return BudgetLedger(store, [LIMIT], reservation_ttl=ttl)


async def cancel_once_waiting(work: Awaitable[object]) -> None:
    """Start `work`, cancel it at its first wait on the store, and let it end."""
    task = asyncio.ensure_future(work)
    await asyncio.sleep(0)  # it runs up to its first real wait: the store call
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_commit_cancelled_while_redis_reconnects_still_records_the_spend(
    redis_server: LocalRedisServer,  # asked for so the test skips (or fails in CI) without redis-server
) -> None:
    with LocalRedisServer() as server:
        ledger = redis_ledger(server.url, ttl=60)
        try:
            reservation = await ledger.reserve(KEYS, usd=0.3, tokens=10)
            server.restart()  # the ledger's connection is gone: the next step connects again
            await asyncio.sleep(0.1)  # the loop reads the dropped connection's end
            # The model answered and was billed; the caller gives up while the commit reconnects.
            await cancel_once_waiting(ledger.commit(reservation, usd=0.25, tokens=8))
            for _ in range(100):
                if (await spent_and_held(ledger))[0] or await ledger.journaled():
                    break
                await asyncio.sleep(0.02)
            await ledger.replay_journal()
            assert await spent_and_held(ledger) == (0.25, 0.0)
        finally:
            await ledger.aclose()


async def test_a_reserve_cancelled_while_sqlite_writes_it_holds_nothing(tmp_path: Path) -> None:
    ledger = BudgetLedger(SQLiteStore(tmp_path / "budgets.db"), [LIMIT], reservation_ttl=600)
    try:
        await ledger.usage(["run:1"])  # the file is open and its schema made
        # The write is queued to the ledger's thread, which runs it: the caller is gone by then.
        await cancel_once_waiting(ledger.reserve(KEYS, usd=0.9, tokens=10))
        await ledger.usage(["run:1"])  # every write queued before this read has run
        assert await spent_and_held(ledger) == (0.0, 0.0)
        # The limit is whole for the next call, not 0.9 short of it for the next ten minutes.
        await ledger.commit(await ledger.reserve(KEYS, usd=0.9, tokens=10), usd=0.9, tokens=10)
    finally:
        await ledger.aclose()


async def test_a_reserve_cancelled_while_redis_runs_it_holds_nothing(
    redis_server: LocalRedisServer,
) -> None:
    ledger = redis_ledger(redis_server.url)
    try:
        await ledger.usage(["run:1"])  # connected, the script loaded
        await cancel_once_waiting(ledger.reserve(KEYS, usd=0.9, tokens=10))
        for _ in range(20):  # any release still on its way lands
            await asyncio.sleep(0.01)
        assert await spent_and_held(ledger) == (0.0, 0.0)
    finally:
        await ledger.aclose()


def test_a_commit_under_way_when_asyncio_run_ends_is_recorded(
    redis_server: LocalRedisServer,  # asked for so the test skips (or fails in CI) without redis-server
) -> None:
    prefix = f"gearshift-test-{uuid.uuid4().hex}:"
    with LocalRedisServer() as server:

        async def answer_and_leave() -> None:
            ledger = redis_ledger(server.url, prefix=prefix, ttl=60)
            reservation = await ledger.reserve(KEYS, usd=0.3, tokens=10)
            server.restart()
            await asyncio.sleep(0.1)
            # The program returns while the commit reconnects: asyncio.run cancels what still runs.
            asyncio.get_running_loop().create_task(ledger.commit(reservation, usd=0.25, tokens=8))
            await asyncio.sleep(0)

        asyncio.run(answer_and_leave())

        async def read() -> tuple[float, float]:
            ledger = redis_ledger(server.url, prefix=prefix, ttl=60)
            try:
                await ledger.replay_journal()
                return await spent_and_held(ledger)
            finally:
                await ledger.aclose()

        assert asyncio.run(read()) == (0.25, 0.0)


async def test_a_release_cancelled_while_redis_reconnects_still_frees_the_budget(
    redis_server: LocalRedisServer,
) -> None:
    import redis

    ledger = redis_ledger(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        reservation = await ledger.reserve(KEYS, usd=0.9, tokens=10)
        # The server drops the ledger's connection (a failover, a proxy's idle cut); the data stays.
        admin.client_kill_filter(_type="normal", skipme=True)
        await asyncio.sleep(0.1)  # the loop reads the dropped connection's end
        # The call failed and is released; its caller gives up while the release reconnects.
        await cancel_once_waiting(ledger.release(reservation))
        assert await spent_and_held(ledger) == (0.0, 0.0)  # not 0.9 held for the next ten minutes
    finally:
        admin.close()
        await ledger.aclose()
