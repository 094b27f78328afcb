"""Budget-aware routing: fit a policy's choice to what the budget allows for this step. Pure.

The ledger's `Allowance` says how much one call may cost now: `max_usd` from pacing and downgrade
limits, `hard_max_usd` from the limits that refuse (hard and downgrade). When the policy's preferred
model costs more, the policy is asked again with only the candidates that fit, so it still picks the
best model the budget affords. When none fits, the cheapest candidate is chosen; the ledger's
reservation then refuses (naming the limit, spent, reserved and requested) only if even that model
does not fit a limit that refuses.

Under a limit that refuses, the reservation must bound what the call can cost, so the call's output
is capped (`output_cap`): at the caller's `max_tokens`, else at the configured default output
estimate, lowered to what the budget still affords on that model. A cap below
`USEFUL_OUTPUT_TOKENS` is raised to it, so the ledger refuses a step that cannot afford a useful
answer rather than buying a few words of one.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from .._decision import Decision
from .._models import ModelSpec
from ..policies import Policy, RouteInput, make_decision

if TYPE_CHECKING:
    from ..budgets import Allowance

__all__ = [
    "USEFUL_OUTPUT_TOKENS",
    "affordable_output_tokens",
    "fit_to_allowance",
    "output_cap",
    "per_call_cap",
]

USEFUL_OUTPUT_TOKENS = 64
"""The smallest output cap worth paying for: a short answer or one tool call (unless the caller or the
default asks for less)."""


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


def affordable_output_tokens(spec: ModelSpec, input_tokens: int, allowance: Allowance) -> int | None:
    """The most output tokens a call of `input_tokens` on `spec` fits under the limits that refuse,
    or None when they cap neither its dollars nor its tokens (no limit refuses, or the output is free)."""
    caps: list[int] = []
    if allowance.hard_max_tokens is not None:
        caps.append(allowance.hard_max_tokens - input_tokens)
    ceiling = allowance.hard_max_usd
    per_token = spec.prices.output / 1_000_000
    if ceiling is not None and per_token > 0:
        left = ceiling - spec.estimate_cost(input_tokens, 0)
        tokens = math.floor(left / per_token) if left > 0 else 0
        while tokens > 0 and spec.estimate_cost(input_tokens, tokens) > ceiling:  # float rounding
            tokens -= 1
        caps.append(tokens)
    return max(0, min(caps)) if caps else None


def output_cap(
    spec: ModelSpec, input_tokens: int, allowance: Allowance | None, *, requested: int | None, default: int
) -> int | None:
    """The output tokens to reserve for, and cap the call at, on `spec`; None when no limit refuses
    (the call then goes uncapped and its reservation is only an estimate).

    The caller's `requested` max_tokens wins; else `default`, lowered to what the budget affords on
    this model but not below `USEFUL_OUTPUT_TOKENS` (a reservation the ledger then refuses). Never
    above the model's own output cap, which the provider applies anyway.
    """
    if allowance is None or not allowance.refuses:
        return None
    if requested is not None:
        cap = requested
    else:
        affordable = affordable_output_tokens(spec, input_tokens, allowance)
        cap = (
            default
            if affordable is None
            else max(min(default, affordable), min(default, USEFUL_OUTPUT_TOKENS))
        )
    return min(cap, spec.max_output_tokens) if spec.max_output_tokens else cap
