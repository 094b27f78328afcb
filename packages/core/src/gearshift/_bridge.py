"""The one sync bridge: run gearshift's async code from synchronous callers.

Everything in gearshift is async. Sync entry points (`Router.complete`, `Router.stream`, the CLI, the
sync methods of the framework adapters) submit their coroutine to one long-lived event loop running in
a daemon thread. A persistent loop matters: SDK clients hold connection pools bound to the loop that
created them, so a fresh `asyncio.run` per call would throw those pools away or break them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_sync", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _bridge_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="gearshift-sync-bridge", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the bridge loop and wait for its result, from any thread.

    Called from inside a running event loop it still works (the coroutine runs on the bridge loop,
    not the caller's), but it blocks that loop while it waits: async callers should await the async API.
    """
    loop = _bridge_loop()
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate_sync(stream: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item per round trip to the bridge loop.

    Leaving the loop early (break, exception, garbage collection) closes the async iterator on the
    bridge loop, so its cleanup (releasing a connection, recording a cancelled attempt) still runs.
    """
    anext_ = stream.__anext__
    try:
        while True:
            try:
                item = run_sync(_next(anext_))
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            run_sync(aclose())


async def _next(anext_: Any) -> Any:
    return await anext_()
