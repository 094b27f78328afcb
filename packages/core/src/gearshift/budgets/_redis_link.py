"""One event loop's connection to Redis: the few commands the ledger sends, on an asyncio protocol.

The ledger sends one command on its hot path (`EVALSHA` of the `BATCH` script, whose answer is one
JSON text) plus `AUTH`, `SELECT` and `SCRIPT LOAD` around it, so this speaks that much of Redis's
wire protocol itself: a step costs one write and one read on the loop's own socket, where a general
client (connection pool, retry wrappers, reply parsing into Python types) cost more CPU than the
script it ran. Replies come back in order, so callers may overlap their steps on one connection.

URLs are redis-py's (`redis://`, `rediss://` for TLS, `unix://`), parsed by redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

__all__ = ["RedisLink", "ReplyError", "connect_link", "pack"]

T = TypeVar("T")


class ReplyError(Exception):
    """The server answered a command with an error (its message, which never holds a password)."""


class RedisLink(asyncio.Protocol):
    """A connection: send a packed command with `call`, get its reply (`ReplyError` for an error)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        # (reply future, deadline in loop time), oldest first: replies come back in this order.
        self._waiters: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._lost: Exception | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        """Whether the connection is up (a lost or closed one is replaced by a new one)."""
        return self._lost is None and self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._waiters:
            reply, end = _parse(self._buffer, 0)
            if end < 0:
                return
            del self._buffer[:end]
            waiter, _ = self._waiters.popleft()
            if not waiter.done():  # a caller that gave up still had its reply read, to stay in step
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the connection to Redis was lost ({exc or 'closed by the server'})"))

    async def call(self, packed: bytes, timeout: float) -> Any:
        """Send one packed command; its reply within `timeout` seconds, else `TimeoutError` (and the
        connection is closed: a late reply must never be read as the next command's)."""
        if self._lost is not None or self._transport is None:
            raise self._lost or ConnectionError("not connected")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append((waiter, loop.time() + timeout))
        if self._watchdog is None:  # one timer for the connection, not one per command
            self._watchdog = loop.call_later(timeout, self._watch)
        self._transport.write(packed)
        reply = await waiter
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def close(self) -> None:
        """Close the connection (idempotent); callers still waiting get `ConnectionError`."""
        if self._transport is not None:
            self._transport.close()
        self._fail(ConnectionError("the connection to Redis was closed"))

    def _watch(self) -> None:
        """Time out the connection if its oldest command is overdue, else look again when it is due."""
        self._watchdog = None
        if not self._waiters or self._lost is not None:
            return
        loop = asyncio.get_running_loop()
        _, deadline = self._waiters[0]
        if loop.time() < deadline:
            self._watchdog = loop.call_at(deadline, self._watch)
            return
        if self._transport is not None:
            self._transport.close()
        self._fail(TimeoutError("Redis did not answer in time"))

    def _fail(self, error: Exception) -> None:
        if self._lost is None:
            self._lost = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


async def connect_link(url: str, *, connect_timeout: float, answer_timeout: float) -> RedisLink:
    """A logged-in connection to the server `url` names (its database selected)."""
    from redis import connection

    parse_url = cast("Callable[[str], dict[str, Any]]", connection.parse_url)  # untyped in redis-py
    SSLConnection, UnixDomainSocketConnection = (
        connection.SSLConnection,
        connection.UnixDomainSocketConnection,
    )
    options = parse_url(url)
    loop = asyncio.get_running_loop()
    kind = options.get("connection_class")
    if kind is UnixDomainSocketConnection:
        opening = loop.create_unix_connection(RedisLink, options["path"])
    else:
        context = _tls_context(options) if kind is SSLConnection else None
        host, port = options.get("host", "localhost"), int(options.get("port", 6379))
        opening = loop.create_connection(RedisLink, host, port, ssl=context)
    _, link = await _within(options.get("socket_connect_timeout") or connect_timeout, opening)
    try:
        if options.get("password") is not None:
            user = [options["username"]] if options.get("username") else []
            await link.call(pack("AUTH", *user, options["password"]), answer_timeout)
        if int(options.get("db", 0) or 0):
            await link.call(pack("SELECT", str(options["db"])), answer_timeout)
    except BaseException:
        link.close()
        raise
    return link


def pack(*parts: str | bytes) -> bytes:
    """A command in Redis's wire protocol (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else part
        out += (b"$%d\r\n" % len(raw), raw, b"\r\n")
    return b"".join(out)


def _parse(buffer: bytearray, at: int) -> tuple[Any, int]:
    """The reply starting at `at` and where it ends; end -1 while it is incomplete."""
    line_end = buffer.find(b"\r\n", at)
    if line_end < 0:
        return None, -1
    kind, head = buffer[at : at + 1], bytes(buffer[at + 1 : line_end])
    after = line_end + 2
    if kind == b"$":
        size = int(head)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return None, -1
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == b"+":
        return head.decode("utf-8", "replace"), after
    if kind == b":":
        return int(head), after
    if kind == b"-":
        return ReplyError(head.decode("utf-8", "replace")), after
    if kind == b"*":
        items: list[Any] = []
        for _ in range(max(0, int(head))):
            item, after = _parse(buffer, after)
            if after < 0:
                return None, -1
            items.append(item)
        return items, after
    raise ConnectionError(f"Redis sent a reply this client does not read ({bytes(kind)!r})")


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", str(ssl.CERT_NONE)):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return context


async def _within(seconds: float, call: Awaitable[T]) -> T:
    """`call`'s result, or `TimeoutError` after `seconds`."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await call
    try:  # pragma: no cover - Python 3.10 only
        return await asyncio.wait_for(call, seconds)
    except asyncio.TimeoutError as exc:  # pragma: no cover - a distinct class before 3.11
        raise TimeoutError(str(exc)) from None
