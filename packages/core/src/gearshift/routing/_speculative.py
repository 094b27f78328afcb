"""Speculative routing: the cheapest model answers while the classifier reads the request.

With `[routing.classifier] speculative = true`, `Router.acomplete` starts two calls at once: the
classification, and the request itself on the cheapest eligible model. When the classifier picks that
model's tier the fast answer is kept (it is often ready by then: no added latency at all); when it
picks a stronger tier, the fast call is cancelled (the router charges what it cost, as for any
cancelled call, and records it as a cancelled attempt) and the chosen model answers. A classification
that fails falls back to the default policy as usual; the fast answer is kept when that policy also
picks its tier. The verdict is read as the chosen call would be planned, budget included, so a
stronger tier the budget cannot pay for keeps the fast answer; a fast call that fails is answered by
the decided tier's chain, with its fallbacks (the speculative call, forced onto one model, has none).
The answer's `attempts` hold every call: the classification, the fast one and the chosen one, so
`cost_usd` includes the wasted spend.

`Router.astream` speculates the same way (`stream_speculatively`): the fast model's stream starts with
the classification, and its first chunks are held back until the verdict. When the verdict keeps the
fast tier the held chunks go out and the stream goes on; when it picks a stronger tier the fast stream
is closed (its connection is dropped, and what it cost is charged as a cancelled attempt) and the
chosen model streams instead, so the caller only ever sees one model's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._context import CallerHints, StepContext
from .._decision import Decision
from .._messages import ChatRequest, StreamEvent
from ..policies._classifier import CLASSIFICATION_KEY, ClassifierPolicy
from ._decide import route_input
from ._planning import aplan_call, aprepare_step, decide_step, escalates
from ._routed import RoutedResponse

if TYPE_CHECKING:
    from .._models import ModelSpec
    from ._chain import ChainRun
    from ._router_host import RouterHost
    from ._tracing import CallTrace

__all__ = ["complete_speculatively", "stream_speculatively"]

_Item = StreamEvent | RoutedResponse | Decision
_Held = StreamEvent | RoutedResponse | BaseException | None


async def complete_speculatively(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    self_escalation: bool | None,
    trace: CallTrace,
) -> RoutedResponse:
    """`Router.acomplete` with the cheapest model started while the classifier decides.

    `trace` follows the call: its run is the one whose answer the caller gets (as on the plain path),
    so the log line, the span and shadow evaluation see speculative calls too.
    """
    policy = router.policy
    assert isinstance(policy, ClassifierPolicy)
    if CLASSIFICATION_KEY in context.metadata:  # the classification call itself, or already decided
        return await _plain(router, request, context, self_escalation, trace)
    fast, fast_context = _fast_call(router, request, context)
    runs: list[ChainRun] = []
    started = asyncio.get_running_loop().create_task(
        _plain(router, request, fast_context, False, trace, runs), name=f"gearshift speculative {fast.id}"
    )
    try:
        classified, classifying = await policy.aprepare(router, request, context)
        decision = await _verdict(router, request, classified)  # reads the ledger: may fail, or be cancelled
    except BaseException:
        await _stop(started)
        raise
    note = f"speculative: {fast.id} cancelled, the classifier picked tier {decision.tier}"
    if decision.tier <= fast.tier:
        try:
            answer = await started
        except Exception as error:  # the speculative call has no fallbacks: the decision's chain does
            note = f"speculative: {fast.id} failed ({type(error).__name__}), so the chain answers"
        else:
            kept = f"speculative: tier {decision.tier} is the fast model's; {fast.id}'s answer is kept"
            return replace(
                answer,
                decision=replace(answer.decision, reasons=(*decision.reasons, kept), policy=policy.name),
                attempts=(*classifying, *answer.attempts),
            )
    # A cancelled call is charged and recorded by its chain (estimated input cost); one that finished
    # just before the cancel landed, or failed, is paid all the same.
    await _stop(started)
    wasted = tuple(attempt for run in runs for attempt in run.attempts)
    chosen = await _plain(router, request, classified, self_escalation, trace)
    return replace(
        chosen,
        decision=replace(chosen.decision, reasons=(*chosen.decision.reasons, note)),
        attempts=(*classifying, *wasted, *chosen.attempts),
    )


async def stream_speculatively(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    self_escalation: bool | None,
    request_id: str,
    trace: CallTrace,
) -> AsyncGenerator[_Item, None]:
    """`Router.astream`'s items (the decision first, the answer last) with the cheapest model's stream
    started while the classifier decides, its chunks held back until the verdict. `trace`'s run is the
    one whose stream the caller gets, as in `complete_speculatively`."""
    from ._review import ReviewLoop

    policy = router.policy
    assert isinstance(policy, ClassifierPolicy)
    escalation = ReviewLoop(router, escalates(router, self_escalation))
    if CLASSIFICATION_KEY in context.metadata:
        run = trace.run = await aplan_call(
            router, request, context, escalate=escalation.offer, request_id=request_id
        )
        yield run.decision
        async with aclosing(escalation.stream(run)) as events:
            async for item in events:
                yield item
        return
    fast, fast_context = _fast_call(router, request, context)
    loop = asyncio.get_running_loop()
    classifying_task = loop.create_task(policy.aprepare(router, request, context))
    held: asyncio.Queue[_Held] = asyncio.Queue()
    runs: list[ChainRun] = []
    pumping = loop.create_task(_pump(router, request, fast_context, request_id, trace, runs, held))
    try:
        classified, classifying = await classifying_task
        decision = await _verdict(router, request, classified)
        # A stronger tier needs nothing from the fast stream: it is closed at once, not after its first
        # chunk (waiting for that would add the fast model's time to first token to the chosen one's).
        arrived = await _arrived(held) if decision.tier <= fast.tier else [_ready(held)]
        # A fast stream that broke before the verdict has shown the caller nothing: the chain answers.
        first = next((item for item in arrived if isinstance(item, BaseException)), arrived[0])
        if decision.tier <= fast.tier and not isinstance(first, BaseException):
            kept = f"speculative: tier {decision.tier} is the fast model's; {fast.id}'s stream is kept"
            yield replace(runs[0].decision, reasons=(*decision.reasons, kept), policy=policy.name)
            async for released in _released(arrived, held):
                if isinstance(released, RoutedResponse):
                    reasons = (*decision.reasons, kept)
                    released = replace(
                        released,
                        decision=replace(released.decision, reasons=reasons, policy=policy.name),
                        attempts=(*classifying, *released.attempts),
                    )
                yield released
            return
    finally:
        # Closing the fast stream drops its connection; its chain charges what it cost as a cancelled
        # attempt (a stream that had already finished or failed is paid all the same).
        await _stop(classifying_task, pumping)
    wasted = tuple(attempt for run in runs for attempt in run.attempts)
    chosen = trace.run = await aplan_call(
        router, request, classified, escalate=escalation.offer, request_id=request_id
    )
    note = f"speculative: {fast.id}'s stream cancelled, the classifier picked tier {decision.tier}"
    if isinstance(first, BaseException):
        note = f"speculative: {fast.id}'s stream failed ({type(first).__name__}), so the chain answers"
    yield replace(chosen.decision, reasons=(*chosen.decision.reasons, note))
    async with aclosing(escalation.stream(chosen)) as events:
        async for item in events:
            if isinstance(item, RoutedResponse):
                item = replace(
                    item,
                    decision=replace(item.decision, reasons=(*item.decision.reasons, note)),
                    attempts=(*classifying, *wasted, *item.attempts),
                )
            yield item


async def _verdict(router: RouterHost, request: ChatRequest, classified: StepContext) -> Decision:
    """The decision the chosen call would be planned with: the classifier's tier as the budget leaves
    it (a tier it cannot pay for becomes the one it can, often the fast model's own), so the fast
    answer is never thrown away for a second call to its own tier."""
    context, _, allowance = await aprepare_step(router, request, classified, prepare=False)
    return decide_step(router, request, context, allowance=allowance)[1]


def _ready(held: asyncio.Queue[_Held]) -> _Held:
    """The fast stream's first item if it has come already (else None), without waiting for it."""
    return None if held.empty() else held.get_nowait()


async def _arrived(held: asyncio.Queue[_Held]) -> list[_Held]:
    """The fast stream's first item (waited for) and every one that has come since."""
    items = [await held.get()]
    while not held.empty():
        items.append(held.get_nowait())
    return items


async def _released(
    arrived: list[_Held], held: asyncio.Queue[_Held]
) -> AsyncIterator[StreamEvent | RoutedResponse]:
    """The fast stream's items, the held ones first, to its end (None); an error that ends it is raised."""
    for item in arrived:
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item
    while (item := await held.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


async def _stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` unless done, and wait for them to unwind (their chains settle what they cost).

    Their own errors are theirs (each chain has recorded it); a cancellation of the caller's, landing
    while they unwind, is not: they are still waited for, then it goes on."""
    for task in tasks:
        if not task.done():
            task.cancel()
    try:
        await asyncio.wait(tasks)
    except asyncio.CancelledError:
        await asyncio.wait(tasks)
        raise
    finally:
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved, so asyncio does not report it as never retrieved


async def _pump(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    request_id: str,
    trace: CallTrace,
    runs: list[ChainRun],
    into: asyncio.Queue[_Held],
) -> None:
    """Stream the speculative call into `into`, then None (or the error that ended it)."""
    from ._review import ReviewLoop

    try:
        run = trace.run = await aplan_call(
            router, request, context, escalate=False, request_id=request_id, prepare=False
        )
        runs.append(run)
        async with aclosing(ReviewLoop(router, False).stream(run)) as events:
            async for item in events:
                into.put_nowait(item)
    except Exception as error:
        into.put_nowait(error)
        return
    into.put_nowait(None)


def _fast_call(
    router: RouterHost, request: ChatRequest, context: StepContext
) -> tuple[ModelSpec, StepContext]:
    """The cheapest eligible model, and the context that sends the speculative call to it."""
    route = route_input(router.registry, request, context, default_output_tokens=router.default_output_tokens)
    fast = route.candidates[0]
    skip = {"tier": None, "reason": f"speculative call on the cheapest eligible model {fast.id}"}
    return fast, replace(
        context,
        hints=CallerHints(force_model=fast.id),
        metadata={**context.metadata, CLASSIFICATION_KEY: skip},
    )


async def _plain(
    router: RouterHost,
    request: ChatRequest,
    context: StepContext,
    self_escalation: bool | None,
    trace: CallTrace,
    runs: list[ChainRun] | None = None,
) -> RoutedResponse:
    from ._review import ReviewLoop

    escalation = ReviewLoop(router, escalates(router, self_escalation))
    run = trace.run = await aplan_call(router, request, context, escalate=escalation.offer)
    if runs is not None:
        runs.append(run)
    return await escalation.complete(run)
