"""`RedisStore`: the ledger store shared by many hosts, one Redis server (or primary) between them.

Every step is one step of a Lua script (`_redis_scripts`), loaded once and then called by its SHA,
so a reserve on one host can never interleave with another host's. Reservations expire by a sorted
set scored by `expires_at` in the server's time: each reserve first drops those whose time has
come, and a client whose clock is off has its times moved to the server's (see `_redis_scripts`).
Each event loop has its own connection (`_redis_link`), which its steps may overlap on.

The `redis` package is the `gearshift[redis]` extra and is imported on first use (for its URL
parsing). Connection faults, timeouts and refused logins surface as `LedgerUnavailable`, naming the
URL without its password. The first connection logs a warning when the server keeps no data across a
restart (`_redis_persistence`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from .._errors import LedgerUnavailable
from .._url_secrets import mask_url
from ._redis_link import RedisLink, ReplyError, connect_link, pack
from ._redis_persistence import warn_if_not_persistent
from ._redis_scripts import BATCH
from ._spend_index import from_nano, to_nano
from ._store import KeyUsage, LimitCheck, ReserveResult, UsageQuery

__all__ = ["RedisStore"]

_CONNECT_TIMEOUT = 5.0  # seconds; a URL's own socket_connect_timeout= wins
_ANSWER_TIMEOUT = 10.0  # seconds for the server to answer a step
_RETRIES = 2  # after a dropped connection; every step is safe to run twice (ids make them idempotent)
_SHA = hashlib.sha1(BATCH.encode("utf-8"), usedforsecurity=False).hexdigest()
_EVALSHA = b"*5\r\n$7\r\nEVALSHA\r\n$40\r\n" + _SHA.encode() + b"\r\n$1\r\n0\r\n"


class RedisStore:
    """A `BudgetStore` in Redis (`redis://[:password@]host:port/db`, `rediss://` for TLS, `unix://`).

    Every key lives under `prefix` (default `gearshift:`), so one server can hold several ledgers.
    Needs the `redis` package: `pip install 'gearshift[redis]'`. Opening does no network I/O; the
    first call connects.
    """

    def __init__(self, url: str, *, prefix: str = "gearshift:") -> None:
        try:  # fail now, with the install command, if the extra is missing
            import redis  # noqa: F401
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != "redis":
                raise
            raise ModuleNotFoundError(
                "RedisStore needs the redis client: pip install 'gearshift[redis]'", name="redis"
            ) from None

        self._url = url
        self._prefix = prefix
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[RedisLink]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._closed = False
        self._persistence_read = False

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self._prefix!r})"

    @property
    def url(self) -> str:
        """The server's URL with any password masked."""
        return mask_url(self._url)

    @property
    def prefix(self) -> str:
        """What every Redis key of this ledger starts with."""
        return self._prefix

    # -- the BudgetStore protocol ---------------------------------------------------------------

    async def reserve(
        self,
        reservation_id: str,
        keys: Sequence[str],
        usd: float,
        tokens: int,
        checks: Sequence[LimitCheck],
        *,
        now: float,
        expires_at: float,
    ) -> ReserveResult:
        """Drop expired reservations, check, and reserve against every key: one script step."""
        args = [
            reservation_id,
            repr(now),
            repr(expires_at),
            str(to_nano(usd)),
            str(tokens),
            list(dict.fromkeys(keys)),
            [
                [
                    check.key,
                    _window(check.since),
                    "" if check.max_usd is None else str(to_nano(check.max_usd)),
                    "" if check.max_tokens is None else str(check.max_tokens),
                    check.enforce,
                ]
                for check in checks
            ],
        ]
        out = await self._run("reserve", args)
        usage = _usages(out[2:], [(check.key, check.since) for check in checks])
        refused = int(out[1])
        return ReserveResult(
            ok=bool(out[0]), usage=usage, refused_by=checks[refused - 1] if refused else None
        )

    async def commit(
        self, reservation_id: str, keys: Sequence[str], usd: float, tokens: int, *, now: float
    ) -> None:
        """Record the spend against every key and drop the reservation, once per reservation id."""
        args = [reservation_id, repr(now), str(to_nano(usd)), str(tokens), list(dict.fromkeys(keys))]
        await self._run("commit", args)

    async def renew(self, reservation_id: str, *, now: float, expires_at: float) -> bool:
        """Move a live reservation's expiry to `expires_at`; False when it is gone or expired."""
        (renewed,) = await self._run("renew", [reservation_id, repr(now), repr(expires_at)])
        return bool(renewed)

    async def release(self, reservation_id: str) -> None:
        """Drop the reservation (if still there) without recording spend."""
        await self._run("release", [reservation_id])

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        """Every query's spend and live reservations, read by one script step (one snapshot)."""
        out = await self._run("usage", [repr(now), [[query.key, _window(query.since)] for query in queries]])
        return _usages(out, [(query.key, query.since) for query in queries])

    async def keys(self) -> tuple[str, ...]:
        """Every key with recorded spend or a reservation not yet forgotten, sorted."""
        members = await self._run("keys", [])
        return tuple(sorted(set(members)))

    async def reset(self, key: str) -> None:
        """Forget the key's spend and take it off every reservation (other keys keep theirs)."""
        await self._run("reset", [key])

    async def aclose(self) -> None:
        """Close every loop's connection. Idempotent; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            links = list(self._links.items())
            self._links.clear()
        for owner, connecting in links:
            if not connecting.done():
                connecting.cancel()
            elif not connecting.cancelled() and connecting.exception() is None:
                link = connecting.result()
                if owner is asyncio.get_running_loop():
                    link.close()
                elif not owner.is_closed():  # another thread's loop owns the transport
                    owner.call_soon_threadsafe(link.close)

    # -- plumbing -------------------------------------------------------------------------------

    async def _run(self, op: str, args: list[Any]) -> list[Any]:
        """Run one step of the script; its answer as a list."""
        steps = json.dumps([[op, self._prefix, args]], separators=(",", ":")).encode("utf-8")
        attempt = 0
        while True:
            try:
                link = await self._link()
                # The wall clock goes with the step: the script moves times by the server's clock.
                wall = repr(time.time()).encode()
                command = b"".join(
                    (_EVALSHA, b"$%d\r\n" % len(wall), wall, b"\r\n$%d\r\n" % len(steps), steps, b"\r\n")
                )
                try:
                    reply = await link.call(command, _ANSWER_TIMEOUT)
                except ReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    await link.call(pack("SCRIPT", "LOAD", BATCH), _ANSWER_TIMEOUT)  # a new server
                    continue
            except LedgerUnavailable:
                raise
            except (ConnectionError, OSError) as exc:
                if isinstance(exc, TimeoutError) or attempt >= _RETRIES:
                    raise self._unavailable(exc) from exc
                attempt += 1
                await asyncio.sleep(0.01 * 2**attempt)
                continue
            except Exception as exc:
                raise self._unavailable(exc) from exc
            (answer,) = json.loads(reply)
            if isinstance(answer, list) and len(answer) == 2 and answer[0] == "!":
                raise self._unavailable(ReplyError(str(answer[1])))
            if isinstance(answer, dict):  # Lua's empty table: JSON has no way to say it was a list
                return []
            return answer if isinstance(answer, list) else [answer]

    async def _link(self) -> RedisLink:
        """This loop's connection, opened (again) when there is none that works."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise LedgerUnavailable(self._url, "the store is closed")
            connecting = self._links.get(loop)
            if connecting is None or (
                connecting.done()
                and (
                    connecting.cancelled()
                    or connecting.exception() is not None
                    or not connecting.result().usable
                )
            ):
                for closed in [other for other in self._links if other.is_closed()]:
                    del self._links[closed]  # no use any more, and its task would keep the loop alive
                connecting = self._links[loop] = loop.create_task(self._connect())
        if connecting.done():
            return connecting.result()
        return await asyncio.shield(connecting)  # a caller that gives up must not undo the connect

    async def _connect(self) -> RedisLink:
        """A new connection; the first of the store also says whether the server keeps its data."""
        link = await connect_link(self._url, connect_timeout=_CONNECT_TIMEOUT, answer_timeout=_ANSWER_TIMEOUT)
        if not self._persistence_read:
            self._persistence_read = True  # one warning per store, whichever loop connects first
            try:
                await warn_if_not_persistent(link, self.url, _ANSWER_TIMEOUT)
            except BaseException:
                self._persistence_read = False  # the connection failed: read them on the next one
                link.close()
                raise
        return link

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        # LedgerUnavailable masks the URL and takes its password out of the reason, raw or decoded.
        return LedgerUnavailable(self._url, f"{type(exc).__name__}: {exc}")


def _window(since: float) -> list[str]:
    """How a script sums a window: [] for a lifetime (the running total), else [since]."""
    return [] if since <= 0.0 else [repr(since)]


def _usages(flat: Sequence[Any], windows: Sequence[tuple[str, float]]) -> tuple[KeyUsage, ...]:
    """KeyUsage values from a script's flat reply: spent usd, tokens, reserved usd, tokens per query."""
    return tuple(
        KeyUsage(
            key=key,
            since=since,
            spent_usd=from_nano(int(flat[4 * i])),
            spent_tokens=int(flat[4 * i + 1]),
            reserved_usd=from_nano(int(flat[4 * i + 2])),
            reserved_tokens=int(flat[4 * i + 3]),
        )
        for i, (key, since) in enumerate(windows)
    )
