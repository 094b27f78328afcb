"""The classifier's verdicts, kept and shared, by what the classifier is shown.

A verdict depends only on the classification call: its model and the prompt it is sent (the request's
user text set in the classifier's prompt). Keying by that, not by the whole request, lets every step of
an agent's turn (the same user words, one more tool call and result each) reuse the turn's verdict.

`VerdictStore` keeps the tiers named (an LRU of `size` entries) and the classifications in flight: a
caller that finds one for its key waits for it instead of paying for the same call. Only a tier is
shared, the same one the cache would have kept: a classification that was cancelled, failed, timed
out or named no tier resolves to None, and its waiters ask for themselves. A waiter waits within its
own timeout: when that runs out first (two identical prompts sent together time out together, and the
asker is still unwinding its cancelled call), it asks nothing, and its reason says it waited.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Flight", "VerdictStore", "verdict_key"]


def verdict_key(model: str, shown: str) -> str:
    """The key of a classification: the classifier model and the exact prompt it is sent."""
    digest = hashlib.sha256(model.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(shown.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(slots=True)
class Flight:
    """One classification in flight; `tier` is what it named, set by the caller that asked."""

    tier: int | None = None


class VerdictStore:
    """Tiers named by the classifier (the `size` most recent) and the classifications in flight."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[str, int] = OrderedDict()
        self._flying: dict[str, asyncio.Future[int | None]] = {}

    def kept(self, key: str) -> int | None:
        """The tier kept for `key`, if any (and mark it recently used)."""
        tier = self._kept.get(key)
        if tier is not None:
            self._kept.move_to_end(key)
        return tier

    def in_flight(self, key: str) -> asyncio.Future[int | None] | None:
        """The classification of `key` another caller of this event loop is waiting for, if any."""
        future = self._flying.get(key)
        if future is None or future.get_loop() is not asyncio.get_running_loop():
            return None  # a router used from two loops shares nothing across them
        return future

    @contextmanager
    def asking(self, key: str) -> Iterator[Flight]:
        """Register the caller's own classification of `key` while it runs. On the way out, however
        it ends (a tier, none, an error, a cancellation), the tier is kept when there is one and the
        waiters get it, or None: they never see the caller's error or cancellation."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._flying.setdefault(key, future)
        flight = Flight()
        try:
            yield flight
        finally:
            if self._flying.get(key) is future:
                del self._flying[key]
            if flight.tier is not None and self.size:
                self._kept[key] = flight.tier
                self._kept.move_to_end(key)
                if len(self._kept) > self.size:
                    self._kept.popitem(last=False)
            future.set_result(flight.tier)
