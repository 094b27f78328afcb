"""The server's recent decisions: a bounded, in-memory record of what `route` and `escalate` decided.

It backs the `gearshift://decisions/recent` resource, so a person (or an agent) can see where the last
calls went and why. Prompt text is kept only when the config's `log.include_prompts` allows it; the
decision log, when one is configured, remains the durable record.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gearshift import Decision, StepContext

__all__ = ["RecentDecisions"]

_MAX_PROMPT_CHARS = 2000


class RecentDecisions:
    """The last `size` decisions the server's tools made, oldest first."""

    def __init__(
        self, size: int = 100, *, include_prompts: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.include_prompts = include_prompts
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._clock = clock

    def add(
        self,
        tool: str,
        decision: Decision,
        context: StepContext,
        *,
        prompt: str,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        """Record one decision; `outcome` holds what a call made of it (model used, cost, error)."""
        entry: dict[str, Any] = {
            "ts": self._clock(),
            "tool": tool,
            "agent_id": context.agent_id,
            "run_id": context.run_id,
            "step_type": context.step_type.value,
            "model": decision.model,
            "tier": decision.tier,
            "reasons": list(decision.reasons),
            "estimated_cost_usd": decision.estimated_cost_usd,
            "budget_changed": decision.budget_changed,
        }
        if outcome:
            entry.update(outcome)
        if self.include_prompts:
            entry["prompt"] = prompt[:_MAX_PROMPT_CHARS]
        self._entries.append(entry)

    def snapshot(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The recorded decisions, oldest first; the last `limit` of them when given."""
        entries = list(self._entries)
        return entries if limit is None else entries[-limit:] if limit > 0 else []

    def __len__(self) -> int:
        return len(self._entries)
