"""The HTTP requests a proxy is serving, so that shutting down waits for the calls it cancelled.

A server stopping (SIGTERM) cancels the answers still open after its grace period and at once runs
the app's shutdown, which closes the router and its decision log; a cancelled call records its attempt
when its task next runs, which was after the log had closed, so the attempt was lost (its spend was
settled, but nothing said where it went). The shutdown now waits for those requests to end first.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["InFlight", "InFlightMiddleware"]


class InFlight:
    """A count of the requests being served, and a wait for there to be none."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every request to end; False if some still run."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:  # not the builtin TimeoutError on Python 3.10
            return False
        return True


class InFlightMiddleware:
    """Counts each HTTP request in `in_flight` while the app serves it."""

    def __init__(self, app: ASGIApp, in_flight: InFlight) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.leave()
