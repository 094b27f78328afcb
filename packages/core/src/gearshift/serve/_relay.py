"""Relaying a routed stream to a client as server-sent events, and stopping it when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._messages import StreamEvent
from ..routing._routed import RoutedResponse, RoutedStream
from ._failures import Failure
from ._hang_up import hung_up

__all__ = ["RelayResponse", "StreamRenderer", "settle"]


class StreamRenderer(Protocol):
    """Renders core stream events in one API's event format (see the `*_wire` modules)."""

    model: str

    def events(self, event: StreamEvent, figures: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The wire events for one core event; `figures` (the call's final model, tier, cost,
        decision id and escalation) comes with `StreamDone` and rides in its closing event."""
        ...

    def error(self, failure: Failure) -> str: ...


async def settle(stream: RoutedStream) -> RoutedResponse | None:
    """Run `stream` past its `StreamDone` to its end, where the router has recorded and charged the
    call: its `result` (cost, escalations) is known from there on."""
    async for _ in stream:  # nothing follows `StreamDone`; this only lets the router finish
        pass
    return stream.result


class RelayResponse(Response):
    """A streamed answer that stops, and lets the router record and charge the attempt, as soon as the
    client hangs up.

    Starlette's `StreamingResponse` stops a stream through an anyio cancel scope, which cancels again
    at every await, also those of the router's cleanup; this response cancels the relay once, as
    asyncio does, and then closes it, so the interrupted attempt is settled at once.

    A server shutting down (SIGTERM) lets open answers run for its grace period, then cancels them:
    a stream still open then is settled the same way and ends with `farewell()`, an error event in
    its API's shape, and a clean end of body, where it broke off mid-body.
    """

    def __init__(
        self, relay: AsyncGenerator[str, None], headers: Mapping[str, str], farewell: Callable[[], str]
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
        ]
        self.relay = relay
        self.farewell = farewell
        self._open = False  # the status line is sent and the body not yet ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sending = asyncio.ensure_future(self._send(send))
        hang_up = asyncio.ensure_future(hung_up(receive))
        stopping = False
        try:
            await asyncio.wait((sending, hang_up), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # only the server cancels a response: it is shutting down
            stopping = True
            if self._open and not hang_up.done():
                sending.cancel()  # it sends nothing more; the farewell goes at once, before the
                body = self.farewell().encode("utf-8")  # settling, as the server stops soon after
                await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            for task in (sending, hang_up):
                task.cancel()
            try:
                await asyncio.gather(sending, hang_up, return_exceptions=True)
                await self.relay.aclose()
            except asyncio.CancelledError:
                # The event loop ending cancels what is left (the attempt was recorded, and its
                # settlement shielded, as the relay was cancelled): the answer is over, not failed.
                if not stopping:
                    raise

    async def _send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        self._open = True
        async for line in self.relay:
            await send({"type": "http.response.body", "body": line.encode("utf-8"), "more_body": True})
        self._open = False
        await send({"type": "http.response.body", "body": b"", "more_body": False})
