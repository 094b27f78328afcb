"""Planning one step of a routed call: from a request and its step context to a `ChainRun` ready to call.

`aplan_call` lets a policy that asks a model first (the classifier) ask it through the router, reads
what the budget allows, then `plan_call` decides: the policy (or the learned escalation's policy for
the run), the move to a faster model or to the one whose prompt cache is warm, the fit to the budget,
the fallback chain, and the `escalate` tool offered to a model below the top tier. The decision is
written to the decision log when the step is a real call. The router, the review loop, speculative
classification and batches plan every step here, through the router as a `RouterHost`.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from .._errors import LedgerUnavailable
from ._budget_fit import fit_to_allowance
from ._chain import ChainRun
from ._decide import route_input
from ._deployments import prefer_latency
from ._records import decision_record
from ._self_escalation import offer_escalation
from ._unsent_settings import note_unsent_settings
from ._warm_cache import stay_warm

if TYPE_CHECKING:
    from .._context import StepContext
    from .._decision import Decision
    from .._messages import ChatRequest
    from .._models import ModelSpec
    from ..budgets import Allowance
    from ..policies import RouteInput
    from ._records import Attempt
    from ._router_host import RouterHost

__all__ = ["aplan_call", "aprepare_step", "decide_step", "escalates", "plan_call"]


async def aplan_call(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    *,
    escalate: bool,
    log: bool = True,
    request_id: str | None = None,
    remember: bool | None = None,
    prepare: bool = True,
) -> ChainRun:
    """Plan one step with the budget read from the ledger; `prepare` lets the policy ask a model first."""
    context, prepared, allowance = await aprepare_step(router, request, context, prepare=prepare)
    run = plan_call(
        router,
        request,
        context,
        allowance=allowance,
        escalate=escalate,
        log=log,
        request_id=request_id,
        remember=remember,
    )
    run.attempts.extend(prepared)
    return run


async def aprepare_step(
    router: RouterHost, request: ChatRequest, context: StepContext, *, prepare: bool = True
) -> tuple[StepContext, tuple[Attempt, ...], Allowance | None]:
    """What a step's decision waits for: the policy's own model call when `prepare` lets it ask one
    (the classifier's attempts), and what the budget allows, with the step's context updated by both."""
    # A policy that must call a model before deciding (the classifier) does it here, through the
    # router, so that call is budgeted and recorded; its decision stays pure.
    prepared: tuple[Attempt, ...] = ()
    classify = getattr(router.policy, "aprepare", None) if prepare else None
    if classify is not None:
        context, prepared = await classify(router, request, context)
    allowance = await _allowance(router, context)
    if allowance is not None and allowance.left_share is not None:
        context = replace(context, budget_left_share=allowance.left_share)
    return context, prepared, allowance


def plan_call(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    *,
    allowance: Allowance | None = None,
    escalate: bool = False,
    log: bool = True,
    request_id: str | None = None,
    remember: bool | None = None,
) -> ChainRun:
    """Decide one step; `remember` (default: `log`, i.e. a real call) keeps a learned hand-over."""
    route, decision = decide_step(
        router,
        request,
        context,
        allowance=allowance,
        remember=log if remember is None else remember,
        escalate=escalate,
    )
    chain = _chain(router, route, decision)
    sent = None
    if escalate and any(m.tier > decision.tier for m in route.candidates):
        sent = offer_escalation(request)
    run = ChainRun(
        router,
        request_id or uuid.uuid4().hex,
        request,
        sent or request,
        context,
        route,
        decision,
        chain,
        escalation_offered=sent is not None,
        allowance=allowance,
        replan=functools.partial(_replan, router, log=log) if allowance is not None else None,
    )
    if log:
        _log_decision(router, run)
    return run


async def _replan(router: RouterHost, run: ChainRun, anew: bool, *, log: bool) -> bool:
    """Plan `run` again against what the budget has left now, after it refused every model the run
    could try; False (nothing changed) unless parallel calls reserved part of what it was planned with,
    or `anew` (it waited for parallel calls to settle) asks for a plan whatever is left.

    The step gets what it would have got had it been planned now: a smaller output cap, or a cheaper
    model when its choice no longer fits (or, after a wait, what their settling left it)."""
    planned = run.allowance
    try:
        fresh = await _allowance(router, run.context)
    except LedgerUnavailable:  # the refusal stands: what is left cannot be read now
        return False
    if planned is None or fresh is None or not (anew or _less_left(fresh, planned)):
        return False
    route, decision = decide_step(
        router, run.request, run.context, allowance=fresh, escalate=run.escalation_offered
    )
    if anew:
        why = f"budget: planned again after waiting for parallel calls to settle ({fresh.reason})"
    else:
        why = f"budget: planned again, as parallel calls reserved part of what was left ({fresh.reason})"
    run.allowance = fresh
    run.decision = replace(decision, reasons=(*decision.reasons, why))
    run.chain = _chain(router, route, decision)
    if log:
        _log_decision(router, run)
    return True


def _less_left(now: Allowance, planned: Allowance) -> bool:
    """Whether the limits that refuse leave less now than when the step was planned."""
    return _below(now.hard_max_usd, planned.hard_max_usd) or _below(
        now.hard_max_tokens, planned.hard_max_tokens
    )


def _below(now: float | None, planned: float | None) -> bool:
    return now is not None and (planned is None or now < planned)


def _chain(router: RouterHost, route: RouteInput, decision: Decision) -> tuple[str, ...]:
    """The models to try for `decision`, in order: its own chain, then (`fallback_to_lower_tiers`)
    the lower tiers, highest first."""
    if not router.fallback_to_lower_tiers:
        return decision.chain
    lower = [m.id for m in reversed(route.candidates) if m.tier < decision.tier]
    return (*decision.chain, *lower)


def decide_step(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    *,
    allowance: Allowance | None = None,
    remember: bool = False,
    escalate: bool = False,
) -> tuple[RouteInput, Decision]:
    """The route and the decision of one step, without the run that would carry it out (`Router.decide`
    needs no more); `remember` keeps a learned hand-over for the run's later steps, and `escalate`
    (the step may offer the `escalate` tool) counts the tool in the estimates of the models offered it."""
    route = route_input(
        router.registry,
        request,
        context,
        default_output_tokens=router.default_output_tokens,
        escalate=escalate,
        providers=router.providers,
    )
    live = router.escalation
    policy = router.policy if live is None else live.policy_for(router.policy, context)
    decision = policy.decide(route)
    if context.hints.force_model is None:
        if router.prefer == "latency":
            decision = prefer_latency(route, decision, router.deployments)
        warm = router.warm_caches.get(context.run_id, router.clock())
        if warm is not None:
            decision = stay_warm(route, decision, warm)
    if allowance is not None:
        decision = fit_to_allowance(route, decision, policy, allowance)
    if live is not None and remember:
        live.remember(context, decision)
    return route, note_unsent_settings(request, decision, router.registry, router.providers)


def escalates(router: RouterHost, override: bool | None) -> bool:
    """Whether a call may self-escalate: its own override, else the router's `self_escalation`; never
    under `max_escalations = 0`, where no hand-over may happen (a model offered `escalate` then could
    only call it for nothing, and its answer would lose that call)."""
    return (router.self_escalation if override is None else override) and router.max_escalations > 0


async def _allowance(router: RouterHost, context: StepContext) -> Allowance | None:
    ledger = router.budgets
    keys = router.spend_keys(context)
    if ledger is None or not ledger.applies(keys):
        return None
    # Paced over the user's latest turn: a thread's earlier turns took their steps and left the rest.
    return await ledger.allowance(
        keys, step_index=context.step_in_turn, expected_steps=context.expected_steps
    )


def _log_decision(router: RouterHost, run: ChainRun) -> None:
    log = router.decision_log
    if log is not None:
        log.write(
            decision_record(
                request_id=run.request_id,
                ts=time.time(),
                decision=run.decision,
                context=run.context,
                request=run.request,
                include_prompt=log.include_prompts,
                reference=_reference(run),
            )
        )


def _reference(run: ChainRun) -> ModelSpec | None:
    """The always-strongest counterfactual of a decision: the cheapest model of its top eligible tier."""
    candidates = run.route.candidates
    return run.route.cheapest_in_tier(max(m.tier for m in candidates)) if candidates else None
