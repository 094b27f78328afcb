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
answer rather than buying a few words of one. The input is priced as the provider may bill it at most
(`billed_input`): a request that marks a prompt-cache breakpoint may have all of it written to the
cache, which Anthropic bills at 1.25x input (2x for the 1-hour cache). A model with long-context
prices is reserved at the tier the real input may reach (`reserved_cost`): the input is an estimate,
and a real count past a threshold the estimate stays under bills the whole call at that tier (up to 2x).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from .._decision import Decision
from .._messages import ChatRequest, Usage
from .._models import ModelSpec
from .._text_tokens import MAX_UNDERCOUNT
from ..policies import Policy, RouteInput, make_decision

if TYPE_CHECKING:
    from ..budgets import Allowance

__all__ = [
    "USEFUL_OUTPUT_TOKENS",
    "affordable_output_tokens",
    "billed_input",
    "fit_to_allowance",
    "output_cap",
    "per_call_cap",
    "reserved_cost",
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


def billed_input(request: ChatRequest, input_tokens: int) -> Usage:
    """The `input_tokens` of `request` as its provider may bill them at most: when a message marks a
    prompt-cache breakpoint, all of them written to the cache (to the 1-hour cache if a mark asks for
    `"ttl": "1h"`), else all of them at the input price."""
    marks = [m.cache_control for m in request.messages if m.cache_control is not None]
    if not marks:
        return Usage(input_tokens)
    one_hour = input_tokens if any(mark.get("ttl") == "1h" for mark in marks) else 0
    return Usage(input_tokens, cache_write_tokens=input_tokens, cache_write_1h_tokens=one_hour)


def reserved_cost(spec: ModelSpec, usage: Usage) -> float:
    """What a call of `usage` (its input at gearshift's estimate) on `spec` may cost at most: priced
    at the long-context tier its real input may reach (up to `MAX_UNDERCOUNT` times the estimate)."""
    if not spec.prices.long_context:
        return spec.cost(usage)
    return spec.cost(usage, tier_input=_reachable_input(usage.input_tokens))


def _reachable_input(estimated: int) -> int:
    return math.ceil(estimated * MAX_UNDERCOUNT)


def affordable_output_tokens(spec: ModelSpec, billed: Usage, allowance: Allowance) -> int | None:
    """The most output tokens a call with `billed` input (see `billed_input`) on `spec` fits under the
    limits that refuse, or None when they cap neither its dollars nor its tokens (no limit refuses,
    or the output is free)."""
    caps: list[int] = []
    if allowance.hard_max_tokens is not None:
        caps.append(allowance.hard_max_tokens - billed.input_tokens)
    ceiling = allowance.hard_max_usd
    per_token = spec.prices.rates(_reachable_input(billed.input_tokens)).output / 1_000_000
    if ceiling is not None and per_token > 0:
        left = ceiling - reserved_cost(spec, billed)
        tokens = math.floor(left / per_token) if left > 0 else 0
        while tokens > 0 and reserved_cost(spec, replace(billed, output_tokens=tokens)) > ceiling:
            tokens -= 1  # float rounding
        caps.append(tokens)
    return max(0, min(caps)) if caps else None


def output_cap(
    spec: ModelSpec, billed: Usage, allowance: Allowance | None, *, requested: int | None, default: int
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
        affordable = affordable_output_tokens(spec, billed, allowance)
        cap = (
            default
            if affordable is None
            else max(min(default, affordable), min(default, USEFUL_OUTPUT_TOKENS))
        )
    return min(cap, spec.max_output_tokens) if spec.max_output_tokens else cap
