import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from gearshift._bridge import iterate_sync, run_on_bridge_if_started, run_sync


async def _loop_id() -> int:
    return id(asyncio.get_running_loop())


def test_run_sync_reuses_one_loop_across_calls_and_threads() -> None:
    first = run_sync(_loop_id())
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(run_sync(_loop_id())))
    thread.start()
    thread.join()
    assert seen == [first]
    assert run_sync(_loop_id()) == first


def test_run_sync_propagates_exceptions() -> None:
    async def fail() -> None:
        raise ValueError("from the loop")

    with pytest.raises(ValueError, match="from the loop"):
        run_sync(fail())


async def test_run_sync_works_inside_a_running_loop() -> None:
    # The coroutine runs on the bridge loop, not this one, so this does not deadlock.
    assert run_sync(_loop_id()) != id(asyncio.get_running_loop())


def test_iterate_sync_closes_the_async_iterator_on_early_exit() -> None:
    closed = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(True)

    taken = []
    for n in iterate_sync(numbers()):
        taken.append(n)
        if n == 2:
            break
    assert taken == [0, 1, 2]
    assert closed == [True]


def test_run_on_bridge_runs_on_the_bridge_loop_and_waits() -> None:
    bridge = run_sync(_loop_id())
    ran: list[int] = []

    async def record() -> None:
        await asyncio.sleep(0.01)
        ran.append(id(asyncio.get_running_loop()))

    run_on_bridge_if_started(record)
    assert ran == [bridge]


def test_run_on_bridge_from_the_bridge_loop_itself_schedules_rather_than_deadlocks() -> None:
    done = threading.Event()

    async def mark() -> None:
        done.set()

    async def from_the_bridge() -> None:
        run_on_bridge_if_started(mark)  # waiting here for the bridge loop would block it for good

    run_sync(from_the_bridge())
    assert done.wait(5.0)
