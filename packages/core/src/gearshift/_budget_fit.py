"""Budget-aware routing: fit a policy's choice to what the budget allows for this step. Pure.

The ledger's `Allowance` says how much one call may cost now: `max_usd` from pacing and downgrade
limits, `hard_max_usd` from the limits that refuse (hard and downgrade). When the policy's preferred
model costs more, the policy is asked again with only the candidates that fit, so it still picks the
best model the budget affords. When none fits, the cheapest candidate is chosen; the ledger's
reservation then refuses (naming the limit, spent, reserved and requested) only if even that model
does not fit a limit that refuses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ._decision import Decision
from .policies import Policy, RouteInput, make_decision

if TYPE_CHECKING:
    from .budgets import Allowance

__all__ = ["fit_to_allowance", "per_call_cap"]


def per_call_cap(allowance: Allowance) -> float | None:
    """The most one call may cost under `allowance`, or None when the budget sets no ceiling."""
    caps = [c for c in (allowance.max_usd, allowance.hard_max_usd) if c is not None]
    return min(caps) if caps else None


def fit_to_allowance(
    route: RouteInput, preferred: Decision, policy: Policy, allowance: Allowance
) -> Decision:
    """`preferred` if the budget affords it, else the best choice among the models it does afford.

    The returned decision has `budget_changed=True` and says why when the budget moved the choice.
    """
    cap = per_call_cap(allowance)
    if cap is None or preferred.estimated_cost_usd <= cap:
        return preferred
    fitting = tuple(m for m in route.candidates if route.estimated_cost(m) <= cap)
    if fitting:
        decision = policy.decide(replace(route, candidates=fitting))
        why = f"the budget allows ${cap:.6f} for this call ({allowance.reason})"
    else:
        cheapest = min(route.candidates, key=route.estimated_cost)
        decision = make_decision(route, cheapest, policy=preferred.policy, reasons=())
        why = (
            f"no model fits the ${cap:.6f} the budget allows for this call ({allowance.reason}); "
            "taking the cheapest"
        )
    if decision.model == preferred.model:
        return preferred
    moved = f"budget: {why}, so {decision.model} instead of {preferred.model}"
    return replace(decision, reasons=(*decision.reasons, moved), budget_changed=True)
