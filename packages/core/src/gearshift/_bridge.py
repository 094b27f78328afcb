"""The one sync bridge: run gearshift's async code from synchronous callers.

Everything in gearshift is async. Sync entry points (`Router.complete`, `Router.stream`, the CLI, the
sync methods of the framework adapters) submit their coroutine to one long-lived event loop running in
a daemon thread. A persistent loop matters: SDK clients hold connection pools bound to the loop that
created them, so a fresh `asyncio.run` per call would throw those pools away or break them.

Because that loop never ends, what a sync caller leaves open on it is closed here: `release_soon`
closes a resource on its own loop from any thread (a provider dropped without `aclose()` closes its
clients so), and `release_at_exit` has the bridge close a resource of its loop when the interpreter
exits. Without them aiohttp warns of every unclosed session, and the connections stay open.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

__all__ = [
    "Releasable",
    "iterate_sync",
    "release_at_exit",
    "release_soon",
    "run_on_bridge",
    "run_on_bridge_if_started",
    "run_sync",
]

T = TypeVar("T")

# How long the interpreter's exit waits for the bridge to close what was left open on its loop.
_EXIT_WAIT = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_at_exit: weakref.WeakSet[Releasable] = weakref.WeakSet()  # the bridge loop's resources still alive
_closing: set[asyncio.Task[None]] = set()  # closes started by `release_soon`, on any loop


class Releasable(Protocol):
    """A resource bound to one event loop, released by awaiting its `close()` on that loop."""

    async def close(self) -> None: ...


def _bridge_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="gearshift-sync-bridge", daemon=True)
            thread.start()
            if _loop is None:
                atexit.register(_release_all_at_exit)
            _loop = loop
        return _loop


def release_soon(loop: asyncio.AbstractEventLoop, resource: Releasable) -> None:
    """Close `resource` on `loop`, the loop it is bound to, from any thread, without waiting.

    For a resource whose owner is gone (it may run in a finalizer, so it never blocks or raises). A
    closed loop's resources cannot be closed any more; a loop that is not running closes it when it
    runs again.
    """
    if loop.is_closed():
        return
    with contextlib.suppress(RuntimeError):  # closed meanwhile
        loop.call_soon_threadsafe(_start_closing, resource)


def release_at_exit(loop: asyncio.AbstractEventLoop, resource: Releasable) -> None:
    """If `loop` is the bridge's, close `resource` on it when the interpreter exits, should it still be
    alive then (only a weak reference is kept). The bridge's loop never ends by itself, and its thread
    is a daemon, so nothing else would close it."""
    if loop is _loop:
        _at_exit.add(resource)


def _start_closing(resource: Releasable) -> None:
    _start_closing_coroutine(_close_quietly(resource))


async def _close_quietly(resource: Releasable) -> None:
    with contextlib.suppress(Exception):  # its owner is gone: nobody to tell
        await resource.close()


async def _release_all() -> None:
    loop = asyncio.get_running_loop()
    pending = [task for task in list(_closing) if task.get_loop() is loop]  # other loops add to it too
    await asyncio.gather(*pending, *(_close_quietly(r) for r in list(_at_exit)))


def _release_all_at_exit() -> None:
    loop = _loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    future = asyncio.run_coroutine_threadsafe(_release_all(), loop)
    with contextlib.suppress(Exception):
        future.result(_EXIT_WAIT)
    if not future.done():
        future.cancel()


def run_on_bridge_if_started(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the coroutine `make()` returns on the bridge loop and wait for it, if the bridge has started
    (nothing a sync caller opened can be on it otherwise). On the bridge loop's own thread it cannot
    be waited for without a deadlock: it is scheduled there instead."""
    loop = _loop
    if loop is None or loop.is_closed():
        return
    run_on_bridge(make)


def run_on_bridge(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the coroutine `make()` returns on the bridge loop (started if need be) and wait for it; on
    the bridge loop's own thread it is scheduled there instead (waiting would deadlock)."""
    loop = _loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None and running is loop:
        _start_closing_coroutine(make())
        return
    run_sync(make())


def _start_closing_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coro)
    _closing.add(task)
    task.add_done_callback(_closing.discard)


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
