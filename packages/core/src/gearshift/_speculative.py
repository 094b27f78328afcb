"""Speculative routing: the cheapest model answers while the classifier reads the request.

With `[routing.classifier] speculative = true`, `Router.acomplete` starts two calls at once: the
classification, and the request itself on the cheapest eligible model. When the classifier picks that
model's tier the fast answer is kept (it is often ready by then: no added latency at all); when it
picks a stronger tier, the fast call is cancelled (the router charges what it cost, as for any
cancelled call, and records it as a cancelled attempt) and the chosen model answers. A classification
that fails falls back to the default policy as usual; the fast answer is kept when that policy also
picks its tier. The answer's `attempts` hold every call: the classification, the fast one and the
chosen one, so `cost_usd` includes the wasted spend.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING

from ._context import CallerHints, StepContext
from ._messages import ChatRequest
from ._routed import RoutedResponse
from ._routing import route_input
from .policies._classifier import CLASSIFICATION_KEY, ClassifierPolicy

if TYPE_CHECKING:
    from ._chain import ChainRun
    from ._router_host import RouterHost

__all__ = ["complete_speculatively"]


async def complete_speculatively(
    router: RouterHost, request: ChatRequest, context: StepContext, self_escalation: bool | None
) -> RoutedResponse:
    """`Router.acomplete` with the cheapest model started while the classifier decides."""
    policy = router.policy
    assert isinstance(policy, ClassifierPolicy)
    if CLASSIFICATION_KEY in context.metadata:  # the classification call itself, or already decided
        return await _plain(router, request, context, self_escalation)
    route = route_input(router.registry, request, context, default_output_tokens=router.default_output_tokens)
    fast = route.candidates[0]
    skip = {"tier": None, "reason": f"speculative call on the cheapest eligible model {fast.id}"}
    fast_context = replace(
        context,
        hints=CallerHints(force_model=fast.id),
        metadata={**context.metadata, CLASSIFICATION_KEY: skip},
    )
    runs: list[ChainRun] = []
    started = asyncio.get_running_loop().create_task(
        _plain(router, request, fast_context, False, runs), name=f"gearshift speculative {fast.id}"
    )
    try:
        classified, classifying = await policy.aprepare(router, request, context)
    except BaseException:
        started.cancel()
        with contextlib.suppress(BaseException):
            await started
        raise
    decision = policy.decide(
        route_input(router.registry, request, classified, default_output_tokens=router.default_output_tokens)
    )
    if decision.tier <= fast.tier:
        answer = await started
        kept = f"speculative: tier {decision.tier} is the fast model's; {fast.id}'s answer is kept"
        return replace(
            answer,
            decision=replace(answer.decision, reasons=(*decision.reasons, kept), policy=policy.name),
            attempts=(*classifying, *answer.attempts),
        )
    started.cancel()
    # A cancelled call is charged and recorded by its chain (estimated input cost); one that finished
    # just before the cancel landed, or failed, is paid all the same.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await started
    wasted = tuple(attempt for run in runs for attempt in run.attempts)
    chosen = await _plain(router, request, classified, self_escalation)
    note = f"speculative: {fast.id} cancelled, the classifier picked tier {decision.tier}"
    return replace(
        chosen,
        decision=replace(chosen.decision, reasons=(*chosen.decision.reasons, note)),
        attempts=(*classifying, *wasted, *chosen.attempts),
    )


async def _plain(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    self_escalation: bool | None,
    runs: list[ChainRun] | None = None,
) -> RoutedResponse:
    from ._review import ReviewLoop

    escalation = ReviewLoop(router, router._escalates(self_escalation))
    run = await router._aplan(request, context, escalate=escalation.offer)
    if runs is not None:
        runs.append(run)
    return await escalation.complete(run)
