import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from gearshift._bridge import iterate_sync, run_sync


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
