"""Per-model cooldowns after provider failures, and the order a fallback chain is tried in.

Pure bookkeeping over a clock value the caller passes in, so tests need no sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import ProviderError

__all__ = ["CooldownTracker"]


@dataclass(frozen=True, slots=True)
class _Cooldown:
    until: float
    reason: str


class CooldownTracker:
    """Remembers which models failed recently and until when they should be skipped.

    A failed model cools down for the provider's `retry_after` when it gave one, else for
    `base_seconds` (doubling with each consecutive failure), never longer than `max_seconds`.
    A request failing as `bad_request` is the caller's fault, not the model's: no cooldown.
    """

    def __init__(self, base_seconds: float = 30.0, max_seconds: float = 300.0) -> None:
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self._cooldowns: dict[str, _Cooldown] = {}
        self._strikes: dict[str, int] = {}
        self._lock = threading.Lock()

    def on_failure(self, error: ProviderError, now: float) -> float:
        """Start (or extend) the failed model's cooldown; returns its length in seconds."""
        if not error.allows_fallback:
            return 0.0
        with self._lock:
            strikes = self._strikes.get(error.model_id, 0) + 1
            self._strikes[error.model_id] = strikes
            if error.retry_after is not None:
                seconds = error.retry_after
            else:
                seconds = self.base_seconds * 2 ** (strikes - 1)
            seconds = min(max(seconds, 0.0), self.max_seconds)
            self._cooldowns[error.model_id] = _Cooldown(now + seconds, error.kind)
            return seconds

    def on_success(self, model_id: str) -> None:
        """A model answered: forget its failures."""
        with self._lock:
            self._cooldowns.pop(model_id, None)
            self._strikes.pop(model_id, None)

    def cooling(self, model_id: str, now: float) -> float:
        """Seconds left of the model's cooldown (0 when it is available)."""
        entry = self._cooldowns.get(model_id)
        return max(entry.until - now, 0.0) if entry else 0.0

    def order(self, chain: Sequence[str], now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Split a chain into (models to try now, models skipped because they are cooling down).

        When every model is cooling down they are all tried anyway, soonest-available first: a call
        that might succeed beats a certain refusal.
        """
        ready = tuple(m for m in chain if self.cooling(m, now) == 0.0)
        if ready:
            return ready, tuple(m for m in chain if m not in ready)
        return tuple(sorted(chain, key=lambda m: self.cooling(m, now))), ()
