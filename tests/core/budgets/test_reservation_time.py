"""Whose time a reservation lives by: renewed while its call runs, and the Redis server's clock.

A call longer than its ttl keeps its reservation (a heartbeat renews it) on every store; a client
whose clock is off (moved here by monkeypatching `time.time`) still has its reservations expire, and
its spend counted, by the Redis server's clock.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from gearshift import BudgetExceeded
from gearshift.budgets import BudgetLedger, BudgetLimit, BudgetStore, UsageQuery
from gearshift.budgets._redis import RedisStore
from gearshift.testing._redis import LocalRedisServer

LIMIT = BudgetLimit(key="run:*", usd=1.0)
TTL = 1.0  # the shortest ttl allowed: heartbeats every 0.4 s


async def test_a_call_longer_than_its_ttl_keeps_its_reservation(store: BudgetStore) -> None:
    host_a = BudgetLedger(store, [LIMIT], reservation_ttl=TTL)
    host_b = BudgetLedger(store, [LIMIT], reservation_ttl=TTL)
    long_call = await host_a.reserve(["run:1"], usd=0.8, tokens=0)
    await asyncio.sleep(1.6 * TTL)  # the model is still writing, well past the first expiry
    with pytest.raises(BudgetExceeded):
        await host_b.reserve(["run:1"], usd=0.8, tokens=0)  # 1 call fits the limit, not 2
    await host_a.commit(long_call, usd=0.7, tokens=0)
    assert host_a._heartbeats == {}  # settled: no heartbeat renews anything any more
    await host_b.reserve(["run:1"], usd=0.3, tokens=0)  # exactly what is left fits


async def test_a_reservation_whose_holder_stopped_renewing_lapses(store: BudgetStore) -> None:
    holder = BudgetLedger(store, [LIMIT], reservation_ttl=TTL)
    other = BudgetLedger(store, [LIMIT], reservation_ttl=TTL)
    await holder.reserve(["run:1"], usd=0.8, tokens=0)
    holder._stop_heartbeat(next(iter(holder._heartbeats)))  # as when its process dies
    await asyncio.sleep(1.2 * TTL)
    await other.reserve(["run:1"], usd=0.8, tokens=0)  # the lapsed reservation holds nothing


async def test_a_skewed_client_clock_does_not_move_redis_expiry_or_spend_times(
    redis_server: LocalRedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"gearshift-test-{uuid.uuid4().hex}:"
    raw = redis.Redis.from_url(redis_server.url)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 31.0)  # this host runs 31 s ahead
    ledger = BudgetLedger(
        RedisStore(redis_server.url, prefix=prefix), [LIMIT], reservation_ttl=30, clock=time.time
    )
    try:
        reservation = await ledger.reserve(["run:1"], usd=0.6, tokens=0)
        server_seconds, micro = raw.time()
        server_now = server_seconds + micro / 1e6
        expiry = raw.zscore(f"{prefix}expiry", reservation.id)
        assert expiry is not None and abs(expiry - (server_now + 30)) < 2  # not server_now + 61
        # A host with the right clock 31 s later (here: the server's own now + 31) must see it gone,
        # and one 29 s later must still see it: the skewed host's own view of time does not count.
        store = ledger.store
        (held,) = await store.usage([UsageQuery("run:1", 0.0)], now=time.time() + 29)
        (gone,) = await store.usage([UsageQuery("run:1", 0.0)], now=time.time() + 31)
        assert (held.reserved_usd, gone.reserved_usd) == (0.6, 0.0)

        await ledger.commit(reservation, usd=0.5, tokens=0)
        ((_, spent_at),) = raw.zrange(f"{prefix}k:run:1:rows", 0, -1, withscores=True)
        assert abs(spent_at - server_now) < 2  # recorded at the server's time, not 31 s ahead
        # A 20 s rolling window of the skewed host still sees the spend it just made (by its own clock
        # the window would start 11 s after it).
        status = await BudgetLedger(
            ledger.store, [BudgetLimit(key="run:*", usd=1.0, window="rolling:20s")], clock=time.time
        ).status(["run:1"])
        assert status.limits[0].spent_usd == 0.5
    finally:
        raw.close()
        await ledger.aclose()


async def test_two_hosts_31_s_apart_with_a_30_s_ttl_cannot_both_spend_the_limit(
    redis_server: LocalRedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"gearshift-test-{uuid.uuid4().hex}:"
    real = time.time
    behind = BudgetLedger(RedisStore(redis_server.url, prefix=prefix), [LIMIT], reservation_ttl=30)
    try:
        await behind.reserve(["run:1"], usd=0.6, tokens=0)  # host A, right clock, mid-call
        monkeypatch.setattr(time, "time", lambda: real() + 31.0)  # host B, 31 s ahead
        ahead = BudgetLedger(behind.store, [LIMIT], reservation_ttl=30, clock=time.time)
        with pytest.raises(BudgetExceeded):
            await ahead.reserve(["run:1"], usd=0.6, tokens=0)  # host A's call still holds its $0.60
    finally:
        # Host A's call never ends: the ledger's own close would wait 5 s for it to settle.
        await behind.store.aclose()
