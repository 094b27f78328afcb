"""`RedisStore`: the ledger store shared by many hosts, one Redis server (or primary) between them.

Every step is one Lua script (`_redis_scripts`), loaded once and then called by its SHA (EVALSHA),
so a reserve on one host can never interleave with another host's. Reservations expire by a sorted
set scored by `expires_at`: each reserve first drops those whose time has come.

The `redis` package is the `gearshift[redis]` extra and is imported on first use. A `redis.asyncio`
client belongs to the event loop that made it, so the store keeps one client per loop: the same
store serves the caller's loop and the sync bridge's alike. Connection faults, timeouts and refused
logins surface as `LedgerUnavailable`, naming the URL without its password.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
import weakref
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import LedgerUnavailable
from ._open import safe_url
from ._redis_scripts import COMMIT, RELEASE, RESERVE, RESET, USAGE
from ._spend_index import bucket_starts, from_nano, split_window, to_nano
from ._store import KeyUsage, LimitCheck, ReserveResult, UsageQuery

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStore"]

T = TypeVar("T")

_CONNECT_TIMEOUT = 5.0  # seconds; a URL's own socket_connect_timeout= wins
_ANSWER_TIMEOUT = 10.0  # seconds for a script's answer (the whole call, not one socket read)
_RETRIES = 2  # after a dropped connection; every script is safe to run twice (ids make them idempotent)


class _Script:
    """One Lua script: its SHA is computed once; the server loads the text only when it lacks it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()

    async def __call__(self, client: Redis, *args: Any) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, 0, *args)
        except NoScriptError:  # a new or restarted server: load once, then go on by SHA
            await client.script_load(self.text)
            return await client.evalsha(self.sha, 0, *args)


_RESERVE, _COMMIT, _RELEASE, _USAGE, _RESET = (_Script(s) for s in (RESERVE, COMMIT, RELEASE, USAGE, RESET))


class RedisStore:
    """A `BudgetStore` in Redis (`redis://[:password@]host:port/db`, `rediss://` for TLS, `unix://`).

    Every key lives under `prefix` (default `gearshift:`), so one server can hold several ledgers.
    Needs the `redis` package: `pip install 'gearshift[redis]'`. Opening does no network I/O; the
    first call connects.
    """

    def __init__(self, url: str, *, prefix: str = "gearshift:") -> None:
        try:  # fail now, with the install command, if the extra is missing
            import redis.asyncio  # noqa: F401
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != "redis":
                raise
            raise ModuleNotFoundError(
                "RedisStore needs the redis client: pip install 'gearshift[redis]'", name="redis"
            ) from None

        self._url = url
        self._prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self._prefix!r})"

    @property
    def url(self) -> str:
        """The server's URL with any password masked."""
        return safe_url(self._url)

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
        """Drop expired reservations, check, and reserve against every key: one script."""
        payload = [
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
        out = await self._run(_RESERVE, payload)
        usage = _usages(out[2:], [(check.key, check.since) for check in checks])
        refused = int(out[1])
        return ReserveResult(
            ok=bool(out[0]), usage=usage, refused_by=checks[refused - 1] if refused else None
        )

    async def commit(
        self, reservation_id: str, keys: Sequence[str], usd: float, tokens: int, *, now: float
    ) -> None:
        """Record the spend against every key and drop the reservation, once per reservation id."""
        minute, hour = bucket_starts(now)
        payload = [
            reservation_id,
            repr(now),
            str(to_nano(usd)),
            str(tokens),
            str(minute),
            str(hour),
            list(dict.fromkeys(keys)),
        ]
        await self._run(_COMMIT, payload)

    async def release(self, reservation_id: str) -> None:
        """Drop the reservation (if still there) without recording spend."""
        await self._run(_RELEASE, reservation_id)

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        """Every query's spend and live reservations, read by one script (one snapshot)."""
        payload = [repr(now), [[query.key, _window(query.since)] for query in queries]]
        out = await self._run(_USAGE, payload)
        return _usages(out, [(query.key, query.since) for query in queries])

    async def keys(self) -> tuple[str, ...]:
        """Every key with recorded spend or a reservation not yet forgotten, sorted."""
        client = self._client()
        try:
            members = await client.sunion([f"{self._prefix}spent", f"{self._prefix}held"])
        except Exception as exc:
            raise self._unavailable(exc) from exc
        return tuple(sorted(m.decode("utf-8") if isinstance(m, bytes) else str(m) for m in members))

    async def reset(self, key: str) -> None:
        """Forget the key's spend and take it off every reservation (other keys keep theirs)."""
        await self._run(_RESET, key)

    async def aclose(self) -> None:
        """Close this loop's connections (and drop other loops'). Idempotent."""
        with self._lock:
            self._closed = True
            clients = list(self._clients.items())
            self._clients.clear()
        loop = asyncio.get_running_loop()
        for owner, client in clients:
            if owner is loop:
                await client.aclose()
            elif owner.is_running() and not owner.is_closed():
                # Another thread's loop: close there, and wait for it without blocking this loop.
                future = asyncio.run_coroutine_threadsafe(client.aclose(), owner)
                await asyncio.wrap_future(future)

    # -- plumbing -------------------------------------------------------------------------------

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise LedgerUnavailable(self._url, "the store is closed")
            client = self._clients.get(loop)
            if client is None:
                client = self._clients[loop] = _connect(self._url)
            return client

    async def _run(self, script: _Script, argument: str | list[Any]) -> list[Any]:
        """Run `script` with the prefix and one argument (a list goes as JSON)."""
        client = self._client()
        if not isinstance(argument, str):
            argument = json.dumps(argument, separators=(",", ":"))
        try:
            out = await _within(_ANSWER_TIMEOUT, script(client, self._prefix, argument))
        except Exception as exc:
            raise self._unavailable(exc) from exc
        return list(out) if isinstance(out, list) else [out]

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        # LedgerUnavailable masks the URL and takes its password out of the reason, raw or decoded.
        return LedgerUnavailable(self._url, f"{type(exc).__name__}: {exc}")


def _connect(url: str) -> Redis:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    # No socket_timeout: redis-py would wrap every socket write in `asyncio.wait_for`, a task per
    # command that cost more CPU than the command itself; `_within` bounds the whole call instead.
    return Redis.from_url(
        url,
        socket_connect_timeout=_CONNECT_TIMEOUT,
        socket_timeout=None,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), _RETRIES),
    )


async def _within(seconds: float, call: Awaitable[T]) -> T:
    """`call`'s result, or `TimeoutError` after `seconds`."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await call
    return await asyncio.wait_for(call, seconds)  # pragma: no cover - Python 3.10 only


def _window(since: float) -> list[str]:
    """How a script sums a window: [] for a lifetime, else [since, rows_until, minutes_until]."""
    split = split_window(since)
    if split is None:
        return []
    return [repr(split.since), str(split.rows_until), str(split.minutes_until)]


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
