"""The names of the policies and baselines `evaluate` and `gearshift eval` know.

Kept apart from the numpy code so that building the command line's parser imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["BASELINES", "LEARNED_METHODS", "POLICIES"]

LEARNED_METHODS: dict[str, str] = {"learned": "auto", "knn": "knn", "linear": "linear"}
"""Learned policy name -> the `train_router` method it evaluates."""

POLICIES: tuple[str, ...] = (*LEARNED_METHODS, "default", "scorer", "length")
"""Policy names `evaluate` accepts; the baselines are evaluated whatever is asked."""

BASELINES: tuple[str, ...] = ("random", "always-cheapest", "always-strongest", "oracle", "length")
"""The baselines every evaluation includes, in the order reports list them."""
