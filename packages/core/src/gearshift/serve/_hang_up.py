"""Noticing a client that hangs up, and stopping the call it was waiting for.

A client that times out or is closed while the proxy waits on the model (a plain answer, or a stream's
first event) leaves nobody to read the answer; without a watch on the connection the call ran to its
end and was charged in full, and an SDK retrying on its own timeout paid for it once per try. Stopping
the call cancels it on the wire, and the router records and charges it as a cancelled attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect
from starlette.types import Receive

__all__ = ["hung_up", "unless_hung_up"]

T = TypeVar("T")


async def hung_up(receive: Receive) -> None:
    """Return once the client has disconnected (the request body must have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_hung_up(work: Awaitable[T], receive: Receive) -> T:
    """`work`'s result, or `ClientDisconnect` once `work` is cancelled because the client hung up first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(hung_up(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request is cancelled itself (a server shutting down)
        watch.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if task.cancelled():
        raise ClientDisconnect
    return task.result()
