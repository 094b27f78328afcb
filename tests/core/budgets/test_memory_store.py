"""`MemoryStore` beyond the shared contract: threads, and what it shows of itself."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import pytest

from gearshift.budgets import BudgetStore, LimitCheck, MemoryStore, UsageQuery

NOW = 1_700_000_000.0


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    # Switching threads every microsecond instead of every 5 ms makes a missing lock show at once
    # (overspend, or "dictionary changed size during iteration") instead of once in a while.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switches")
def test_threads_each_running_their_own_loop_never_overspend() -> None:
    # Sync callers reach the store from several threads (the sync bridge, worker threads): the lock,
    # not the event loop, is what keeps a check and its reservation one step.
    store = MemoryStore()
    check = LimitCheck("cap", "run:1", 0.0, None, 1000, enforce=True)
    granted: list[bool] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()

        async def burst() -> list[bool]:
            results = []
            for i in range(200):
                result = await store.reserve(
                    f"{n}-{i}", ["run:1"], 0.0, 7, [check], now=NOW, expires_at=NOW + 60
                )
                results.append(result.ok)
            return results

        granted.extend(asyncio.run(burst()))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 1600
    assert sum(granted) == 1000 // 7
    (usage,) = asyncio.run(store.usage([UsageQuery("run:1", 0.0)], now=NOW))
    assert usage.reserved_tokens == (1000 // 7) * 7


async def test_reset_takes_the_key_off_a_shared_reservation_only() -> None:
    store = MemoryStore()
    await store.reserve("r1", ["agent:a", "run:1"], 0.5, 5, [], now=NOW, expires_at=NOW + 60)
    await store.reset("agent:a")
    agent, run = await store.usage([UsageQuery("agent:a", 0.0), UsageQuery("run:1", 0.0)], now=NOW)
    assert (agent.reserved_usd, run.reserved_usd) == (0.0, 0.5)
    await store.reset("run:1")
    assert await store.keys() == ()


async def test_a_repeated_key_is_charged_once() -> None:
    store = MemoryStore()
    await store.commit("c1", ["run:1", "run:1"], 0.5, 5, now=NOW)
    (run,) = await store.usage([UsageQuery("run:1", 0.0)], now=NOW)
    assert (run.spent_usd, run.spent_tokens) == (0.5, 5)


def test_it_is_a_budget_store_named_memory() -> None:
    store = MemoryStore()
    assert isinstance(store, BudgetStore)
    assert (store.url, repr(store)) == ("memory://", "MemoryStore()")
