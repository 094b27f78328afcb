"""How the persistent stores (SQLite, Redis) keep spend so every window sum is exact and cheap.

Money is kept as integer nano-dollars (1e-9 USD), not float dollars: integer sums are exact in any
order, so a limit is never passed, nor a call refused, by a rounding error, however many processes
add to the same total. $9 million fits in the 2**53 integers a Lua number (Redis) holds exactly.

Each key keeps:
- a running total (a lifetime limit, `since <= 0`, reads one row: O(1));
- spend buckets one minute wide and one hour wide;
- the spend rows themselves, each with its time.

A window starting at `since` is summed as the rows in `[since, next minute)`, the minute buckets in
`[next minute, next hour)` and the hour buckets from the next hour on: at most one minute of rows,
59 minute buckets and one hour bucket per hour of the window. The sum is exact (no bucket is
counted in part), so a rolling window neither over- nor under-states spend. Calendar windows start
on whole minutes, so they read no rows at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._store import KeyUsage, LimitCheck

__all__ = [
    "HOUR",
    "LIFETIME",
    "MINUTE",
    "NANO",
    "WindowSplit",
    "bucket_starts",
    "first_refusal",
    "from_nano",
    "split_window",
    "to_nano",
]

NANO = 1_000_000_000
"""Nano-dollars per dollar."""

LIFETIME = 0
"""The width of a key's running total, where a store keeps it with the buckets."""
MINUTE = 60
HOUR = 3600


def to_nano(usd: float) -> int:
    """Dollars as integer nano-dollars (rounded to nearest, so equal dollars give equal integers)."""
    return round(usd * NANO)


def from_nano(nano: int) -> float:
    """Integer nano-dollars as float dollars."""
    return nano / NANO


def bucket_starts(at: float) -> tuple[int, int]:
    """The start of the minute bucket and of the hour bucket a spend at `at` is added to."""
    return math.floor(at / MINUTE) * MINUTE, math.floor(at / HOUR) * HOUR


@dataclass(frozen=True, slots=True)
class WindowSplit:
    """A window `[since, ∞)` split into exact parts: rows in `[since, rows_until)`, minute buckets
    starting in `[rows_until, minutes_until)`, hour buckets starting at or after `minutes_until`."""

    since: float
    rows_until: int
    minutes_until: int


def split_window(since: float) -> WindowSplit | None:
    """How to sum spend since `since` exactly; `None` for a lifetime window (read the running total)."""
    if since <= 0.0:
        return None
    return WindowSplit(
        since=since,
        rows_until=math.ceil(since / MINUTE) * MINUTE,
        minutes_until=math.ceil(since / HOUR) * HOUR,
    )


def first_refusal(
    checks: Sequence[LimitCheck], usages: Sequence[KeyUsage], usd_nano: int, tokens: int
) -> LimitCheck | None:
    """The first enforced check a request of (`usd_nano`, `tokens`) does not fit, given each check's
    usage before it; `None` when it fits them all. Compared in nano-dollars, so exactly."""
    for check, usage in zip(checks, usages, strict=True):
        if not check.enforce:
            continue
        if check.max_usd is not None:
            held = to_nano(usage.spent_usd) + to_nano(usage.reserved_usd)
            if held + usd_nano > to_nano(check.max_usd):
                return check
        if (
            check.max_tokens is not None
            and usage.spent_tokens + usage.reserved_tokens + tokens > check.max_tokens
        ):
            return check
    return None
