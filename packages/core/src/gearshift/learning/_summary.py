"""`TrainingSummary`: what a learned router was trained on and how each method it tried scored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainingSummary"]


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """What a router was trained on and how each method scored in internal cross-validation.

    `scores` maps each method tried to its mean internal-CV score (normalized area under the
    cost-quality sweep: 0.5 is random routing, 1.0 is the oracle); `chosen` is the method kept.
    """

    rows: int
    tasks: tuple[str, ...]
    method: str
    scores: dict[str, float]
    folds: int
    seconds: float
    source: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
