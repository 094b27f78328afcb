"""`MemoryStore`: the reference `BudgetStore`, held in this process's memory.

Right for tests, notebooks and single-process services that need no spend history across restarts.
Every method runs under one lock and never awaits while holding it, so it is atomic for coroutines
of one event loop and for threads alike. Spend is kept as timestamped entries (so rolling and
calendar windows can be summed) and read with a linear scan: simple, and fast enough for the
thousands of calls one process makes; SQLite and Redis are the stores for long histories.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ._store import KeyUsage, LimitCheck, ReserveResult, UsageQuery, exceeded_cap

__all__ = ["MemoryStore"]


@dataclass(frozen=True, slots=True)
class _Spend:
    at: float
    usd: float
    tokens: int


@dataclass(slots=True)
class _Held:
    keys: set[str]
    usd: float
    tokens: int
    expires_at: float


class MemoryStore:
    """A `BudgetStore` in this process's memory; thread-safe; forgets everything when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spends: dict[str, list[_Spend]] = {}
        self._held: dict[str, _Held] = {}
        self._committed: set[str] = set()

    @property
    def url(self) -> str:
        """Always `memory://`."""
        return "memory://"

    def __repr__(self) -> str:
        return "MemoryStore()"

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
        """Check every enforced check and, if all fit, hold (`usd`, `tokens`) on every key."""
        with self._lock:
            self._forget_expired(now)
            usage = tuple(self._usage(check.key, check.since, now) for check in checks)
            for check, used in zip(checks, usage, strict=True):
                if check.enforce and exceeded_cap(
                    check.max_usd,
                    check.max_tokens,
                    used.spent_usd + used.reserved_usd,
                    used.spent_tokens + used.reserved_tokens,
                    usd,
                    tokens,
                ):
                    return ReserveResult(ok=False, usage=usage, refused_by=check)
            self._held[reservation_id] = _Held(set(keys), usd, tokens, expires_at)
            return ReserveResult(ok=True, usage=usage)

    async def commit(
        self, reservation_id: str, keys: Sequence[str], usd: float, tokens: int, *, now: float
    ) -> None:
        """Record the spend at `now` on every key (once per reservation id) and drop the reservation."""
        with self._lock:
            self._held.pop(reservation_id, None)
            if reservation_id in self._committed:
                return
            self._committed.add(reservation_id)
            for key in dict.fromkeys(keys):
                self._spends.setdefault(key, []).append(_Spend(now, usd, tokens))

    async def renew(self, reservation_id: str, *, now: float, expires_at: float) -> bool:
        """Move the reservation's expiry, if it is still live at `now`."""
        with self._lock:
            held = self._held.get(reservation_id)
            if held is None or held.expires_at <= now:
                return False
            held.expires_at = expires_at
            return True

    async def release(self, reservation_id: str) -> None:
        """Drop the reservation, if it is still held."""
        with self._lock:
            self._held.pop(reservation_id, None)

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        """Each query's spend since its window start and live reservations, in one snapshot."""
        with self._lock:
            return tuple(self._usage(query.key, query.since, now) for query in queries)

    async def keys(self) -> tuple[str, ...]:
        """Keys with recorded spend or a held reservation, sorted."""
        with self._lock:
            held = {key for reservation in self._held.values() for key in reservation.keys}
            return tuple(sorted(held | {key for key, spends in self._spends.items() if spends}))

    async def reset(self, key: str) -> None:
        """Forget the key's spend, and take it off every reservation (other keys keep theirs)."""
        with self._lock:
            self._spends.pop(key, None)
            for reservation_id, reservation in list(self._held.items()):
                reservation.keys.discard(key)
                if not reservation.keys:
                    del self._held[reservation_id]

    async def aclose(self) -> None:
        """Nothing to close."""

    def _usage(self, key: str, since: float, now: float) -> KeyUsage:
        spent_usd, spent_tokens = 0.0, 0
        for spend in self._spends.get(key, ()):
            if spend.at >= since:
                spent_usd += spend.usd
                spent_tokens += spend.tokens
        reserved_usd, reserved_tokens = 0.0, 0
        for held in self._held.values():
            if key in held.keys and held.expires_at > now:
                reserved_usd += held.usd
                reserved_tokens += held.tokens
        return KeyUsage(key, since, spent_usd, spent_tokens, reserved_usd, reserved_tokens)

    def _forget_expired(self, now: float) -> None:
        for reservation_id in [i for i, held in self._held.items() if held.expires_at <= now]:
            del self._held[reservation_id]
