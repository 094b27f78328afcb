"""Counting units of long work (an evaluation, a training) for an `on_progress(done, total)` callback."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["WorkCounter"]


class WorkCounter:
    """Calls `on_progress(done, total)` each time a unit of work ends (nothing without a callback)."""

    def __init__(self, total: int, on_progress: Callable[[int, int], None] | None) -> None:
        self.total = total
        self.done = 0
        self._on_progress = on_progress

    def step(self) -> None:
        """Count one more unit as done."""
        self.done += 1
        if self._on_progress is not None:
            self._on_progress(self.done, self.total)
