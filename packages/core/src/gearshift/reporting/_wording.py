"""How the report words its counts and its drift, in the terminal and on the HTML page alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MODELS_SUM", "TIERS_SUM", "count", "drift_weeks"]

MODELS_SUM = "each model's own attempts, failed and escalated-from ones included"
"""What the Models table's cost column sums."""
TIERS_SUM = "whole requests under the tier that answered, an escalation's cheaper attempts included"
"""What the Tiers table's cost column sums (so the two tables' costs per row differ)."""


def count(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless `n` is one: "1 request", "2 requests"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def drift_weeks(drift: Mapping[str, Any]) -> str:
    """The two weeks a drift compares, each with its requests, and the days the log covers of a
    partial one: "2026-W47 (36 requests) -> 2026-W48 (10 requests, partial: 2 of 7 days)"."""
    return " -> ".join(
        f"{drift[f'{side}_week']} ({count(drift[f'{side}_requests'], 'request')}"
        + (f", partial: {drift[f'{side}_days']} of 7 days)" if drift[f"{side}_days"] < 7 else ")")
        for side in ("from", "to")
    )
