"""The storage seam of budgets: what every ledger store (memory, SQLite, Redis) must do atomically.

The `BudgetLedger` turns limits, windows and modes into plain `LimitCheck`s; a store only sums,
compares and records. Each method is one atomic step against the store, so parallel callers in
threads, processes or hosts never both pass a check that only one of them fits.

Times are Unix seconds (float). Money is float US dollars; tokens are ints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "MAX_USD",
    "BudgetStore",
    "KeyUsage",
    "LimitCheck",
    "ReserveResult",
    "UsageQuery",
    "exceeded_cap",
]


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit a reservation is checked against.

    `key` is the spend key it sums (`agent:researcher`), `since` the start of its window (0.0 for a
    lifetime limit). A reservation fits when, for every check with `enforce=True`, the spend recorded
    at or after `since` plus the live (unexpired) reservations of the key plus the request stays at
    or under `max_usd` and `max_tokens` (a `None` cap is not checked; `exceeded_cap` is the
    comparison). Checks with `enforce=False` (soft limits) never refuse; the store only reports
    their usage. Hard and downgrade limits are enforced: a downgrade limit steers the router to
    cheaper models first, and refuses only a call that even the cheapest model cannot fit.
    """

    limit_name: str
    key: str
    since: float
    max_usd: float | None
    max_tokens: int | None
    enforce: bool


_NANO = 1_000_000_000

MAX_USD = 1_000_000_000.0
"""The most dollars a limit or a call may name ($1 billion). Stores keep money as integer
nano-dollars: this is 1e18 of them, inside the 64-bit integers SQLite keeps and Redis's script
formats, where a cap of 1e300 dollars overflowed and every call was refused as if the store were
down. A cap this high never refuses anyway."""


def exceeded_cap(
    max_usd: float | None,
    max_tokens: int | None,
    used_usd: float,
    used_tokens: int,
    usd: float,
    tokens: int,
) -> Literal["usd", "tokens"] | None:
    """Which cap a request of (`usd`, `tokens`) would pass on top of what is used (spent plus
    reserved), dollars first; None when it fits. Every store applies this rule to `LimitCheck`s.

    Dollars are compared as whole nano-dollars, so float sums (0.1 + 0.2 against 0.3) never refuse
    a call that fits exactly; tokens are ints and compared exactly.
    """
    if max_usd is not None and round(used_usd * _NANO) + round(usd * _NANO) > round(max_usd * _NANO):
        return "usd"
    if max_tokens is not None and used_tokens + tokens > max_tokens:
        return "tokens"
    return None


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Ask for a key's spend since a time, and its live reservations."""

    key: str
    since: float


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """A key's spend since a window start and its live reservations, as the store saw them."""

    key: str
    since: float
    spent_usd: float
    spent_tokens: int
    reserved_usd: float
    reserved_tokens: int


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """The outcome of `BudgetStore.reserve`.

    `usage[i]` is the usage of `checks[i]` before this reservation (whether or not it was made).
    `refused_by` is the first enforced check the request did not fit; then nothing was recorded.
    """

    ok: bool
    usage: tuple[KeyUsage, ...]
    refused_by: LimitCheck | None = None


@runtime_checkable
class BudgetStore(Protocol):
    """Where spend and reservations live. Every method is atomic on its own."""

    @property
    def url(self) -> str:
        """Where the store is, with any password removed (`memory://`, `sqlite:///...`, `redis://...`)."""
        ...

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
        """In one atomic step: forget expired reservations, check every enforced check, and if all fit,
        record a reservation of (`usd`, `tokens`) against every key of `keys` until `expires_at`."""
        ...

    async def commit(
        self, reservation_id: str, keys: Sequence[str], usd: float, tokens: int, *, now: float
    ) -> None:
        """In one atomic step: record a spend of (`usd`, `tokens`) at `now` against every key and drop
        the reservation. The spend is recorded even if the reservation already expired (a late commit
        must not lose money). Committing the same `reservation_id` twice records it once."""
        ...

    async def renew(self, reservation_id: str, *, now: float, expires_at: float) -> bool:
        """Move a reservation that is still live at `now` to expire at `expires_at` instead (a call
        still running keeps its budget); False when it is gone or already expired, and then nothing
        changes: an expired reservation may already have been counted as free by another caller."""
        ...

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation without recording spend (the call failed or was cancelled). Idempotent."""
        ...

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        """Each query's spend since its window start and live reservations, read in one snapshot."""
        ...

    async def keys(self) -> tuple[str, ...]:
        """Every key with recorded spend or a live reservation, sorted."""
        ...

    async def reset(self, key: str) -> None:
        """Forget a key's spend and reservations."""
        ...

    async def aclose(self) -> None:
        """Release connections and files. Idempotent."""
        ...
