"""Reviewing an answer before the caller gets it: self-escalation and cascade gates.

After a model answers, `ReviewLoop` decides whether a stronger model must take over: the model called
the injected `escalate` tool (self-escalation), or the router's cascade gate rejected the answer.
Then it plans again with the minimum tier raised above the answering model's, carries that decision
out on the same account (attempts, budget, records) and reviews the new answer in turn, at most
`Router.max_escalations` times. The caller gets one answer and the `Escalation` records.

A hand-over that cannot give an answer keeps the one already paid for: when every model of the
stronger chain fails (`AllModelsFailed`, after its fallbacks) or a hard budget refuses the stronger
call (`BudgetExceeded`), the caller gets the weaker model's answer, the last `Escalation` says why in
`failed`, and the decision's reasons end with "kept the tier-N answer of <model>, which ...". Any other
error still reaches the caller: a bad request (it would fail anywhere; the caller must fix it), a
cancellation, a ledger that cannot be read, a stream that broke after the caller saw part of it. A
self-escalation whose answer was the `escalate` call alone has nothing to keep: its error is raised.

Each hand-over's decision-log record is written when it has ended, with its `outcome` (answered, kept,
error), so the log and `gearshift report` never take a hand-over that found no answer for one that did.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .._context import CallerHints
from .._errors import AllModelsFailed, BudgetExceeded
from .._messages import ChatRequest, ChatResponse, StreamDone, StreamEvent, TextDelta, ToolCallDelta
from ..cascades._gate import AnswerCheck
from ._planning import aplan_call
from ._records import escalation_record, refusal_record
from ._routed import Escalation, RoutedResponse
from ._self_escalation import (
    ESCALATE_TOOL_NAME,
    escalation_call,
    escalation_reason,
    without_escalation,
    written_call,
)

if TYPE_CHECKING:
    from ._chain import ChainRun
    from ._router_host import RouterHost

__all__ = ["ReviewLoop"]


@dataclass(slots=True)
class ReviewLoop:
    """One routed call's answers and hand-overs. `offer` is whether self-escalation is on."""

    router: RouterHost
    offer: bool
    escalations: list[Escalation] = field(default_factory=list)
    _handing_over: ChainRun | None = None  # the last hand-over's run until its record is written

    async def complete(self, run: ChainRun) -> RoutedResponse:
        """Carry out `run`, escalating as long as the answer is handed over; a hand-over that fails
        (every stronger model failed, or the budget refused it) keeps the answer it would replace."""
        try:
            return await self._complete(run)
        except BaseException as exc:  # a cancellation too: the hand-over's record says how it ended
            self._settle("error", exc)
            raise

    async def stream(self, run: ChainRun) -> AsyncGenerator[StreamEvent | RoutedResponse, None]:
        """Carry out `run` as a stream; a lower-tier model's events are held back while its answer
        may still be handed over, then released once it is accepted, or once the hand-over failed
        before the caller saw any of the stronger model's answer (the answer is kept, see `complete`)."""
        try:
            async with aclosing(self._stream(run)) as events:
                async for event in events:
                    yield event
        except BaseException as exc:  # a caller that stopped reading too (GeneratorExit)
            self._settle("error", exc)
            raise

    async def _complete(self, run: ChainRun) -> RoutedResponse:
        response = await run.complete()
        while True:
            reason = await self._review(run, response)
            if reason is None:
                return self._result(run, response)
            stronger = await self._escalate(run, response, *reason)
            try:
                answer = await stronger.complete()
            except (AllModelsFailed, BudgetExceeded) as exc:
                return self._kept(run, response, exc)
            self._settle("answered")
            run, response = stronger, answer

    async def _stream(self, run: ChainRun) -> AsyncGenerator[StreamEvent | RoutedResponse, None]:
        kept: tuple[ChainRun, list[StreamEvent]] | None = None  # what a failed hand-over releases
        while True:
            shown = False
            try:
                if not self._may_hand_over(run):
                    # aclosing: a caller that stops early must close the provider's stream now, not at GC.
                    async with aclosing(run.stream()) as events:
                        async for event in events:
                            if isinstance(event, StreamDone):
                                self._settle("answered")
                            shown = True
                            yield event
                            if isinstance(event, StreamDone):
                                yield self._result(run, event.response)
                    return
                async with aclosing(run.stream(held=True)) as events:
                    held = [event async for event in events]
            except (AllModelsFailed, BudgetExceeded) as exc:
                if kept is None or shown:
                    raise
                weaker, events_held = kept
                done = events_held[-1]
                assert isinstance(done, StreamDone)
                result = self._kept(weaker, done.response, exc)
                for event in _offered_call_dropped(weaker, events_held):
                    yield event
                yield result
                return
            done = held[-1]
            assert isinstance(done, StreamDone)  # ChainRun.stream always ends with it
            self._settle("answered")
            reason = await self._review(run, done.response)
            if reason is None:
                for event in _offered_call_dropped(run, held):
                    yield event
                yield self._result(run, done.response)
                return
            kept = (run, held)
            run = await self._escalate(run, done.response, *reason)

    # -- deciding to hand over ------------------------------------------------------------------

    def _higher_tier_exists(self, run: ChainRun, tier: int) -> bool:
        return any(m.tier > tier for m in run.route.candidates)

    def _may_hand_over(self, run: ChainRun) -> bool:
        if len(self.escalations) >= self.router.max_escalations:
            return False
        gated = self.router.cascade is not None and self._higher_tier_exists(run, run.decision.tier)
        return run.escalation_offered or gated

    async def _review(self, run: ChainRun, response: ChatResponse) -> tuple[str, str] | None:
        """(reason, source) when `response` must go to a stronger model, else None."""
        if len(self.escalations) >= self.router.max_escalations:
            return None
        tier = self.router.registry[response.model_id].tier
        if not self._higher_tier_exists(run, tier):
            return None
        call = escalation_call(response) if run.escalation_offered else None
        if call is not None:
            return escalation_reason(call), "self"
        gate = self.router.cascade
        if gate is None:
            return None
        check = AnswerCheck(run.request, _answer(run, response), run.decision, run.context, self._ask(run))
        verdict = await gate.check(check)
        if verdict.accept:
            return None
        return verdict.reason or f"the {verdict.gate} gate rejected the answer", f"gate:{verdict.gate}"

    async def _escalate(self, run: ChainRun, response: ChatResponse, reason: str, source: str) -> ChainRun:
        tier = self.router.registry[response.model_id].tier
        hints = run.context.hints
        min_tier = tier + 1 if hints.min_tier is None else max(hints.min_tier, tier + 1)
        context = replace(run.context, hints=replace(hints, min_tier=min_tier))
        offer = self.offer and len(self.escalations) + 1 < self.router.max_escalations
        nxt = await aplan_call(self.router, run.request, context, escalate=offer, request_id=run.request_id)
        nxt.attempts = run.attempts  # one account for the whole call
        self.escalations.append(Escalation(response.model_id, nxt.decision.model, reason, source))
        self._handing_over = nxt
        return nxt

    def _settle(self, outcome: str, error: BaseException | None = None) -> None:
        """Log the last hand-over, if it is still open, now that it has ended: `outcome` is
        "answered" (the stronger model answered), "kept" (it found no answer and the caller got the
        weaker one) or "error" (its error, or a cancellation, reached the caller)."""
        nxt, self._handing_over = self._handing_over, None
        if nxt is None:
            return
        if error is not None and self.escalations[-1].failed is None:
            self.escalations[-1] = replace(self.escalations[-1], failed=_ended_by(error))
        log = self.router.decision_log
        if log is not None:
            escalation = self.escalations[-1]
            log.write(
                escalation_record(
                    request_id=nxt.request_id,
                    ts=time.time(),
                    escalation=escalation,
                    context=nxt.context,
                    outcome=outcome,
                )
            )

    def _kept(
        self, run: ChainRun, response: ChatResponse, error: AllModelsFailed | BudgetExceeded
    ) -> RoutedResponse:
        """`response`, whose hand-over failed with `error`, as the call's answer; `error` itself when
        there is nothing to keep (a self-escalation that said nothing beside its `escalate` call)."""
        answer = _answer(run, response)
        if not answer.text.strip() and not answer.tool_calls:
            raise error
        escalation = self.escalations[-1]
        self.escalations[-1] = replace(escalation, failed=str(error))
        self._settle("kept")
        log = self.router.decision_log
        if log is not None and isinstance(error, BudgetExceeded):
            # The call itself succeeds, so its trace writes no refusal: the log must still show it.
            keys = self.router.spend_keys(run.context)
            log.write(
                refusal_record(
                    request_id=run.request_id,
                    ts=time.time(),
                    context=run.context,
                    keys=keys,
                    error=str(error),
                )
            )
        tier = self.router.registry[response.model_id].tier
        judged = (
            f"asked to escalate ({escalation.reason})"
            if escalation.source == "self"
            else f"failed the {escalation.source.removeprefix('gate:')} gate ({escalation.reason})"
        )
        why = (
            f"the budget refused the stronger call ({error})"
            if isinstance(error, BudgetExceeded)
            else f"every stronger model failed ({error})"
        )
        kept = f"kept the tier-{tier} answer of {response.model_id}, which {judged}: {why}"
        decision = replace(run.decision, reasons=(*run.decision.reasons, kept))
        return RoutedResponse(answer, decision, tuple(run.attempts), run.request_id, tuple(self.escalations))

    def _ask(self, run: ChainRun) -> AskModel:
        async def ask(model_id: str, request: ChatRequest) -> ChatResponse:
            """One extra call to `model_id` (a judge, a second sample) on this call's account."""
            self.router.registry[model_id]  # an unknown id raises UnknownModelError naming the known ones
            context = replace(run.context, hints=CallerHints(force_model=model_id))
            extra = await aplan_call(self.router, request, context, escalate=False, request_id=run.request_id)
            extra.attempts, extra.answers = run.attempts, run.answers
            return await extra.complete()

        return ask

    def _result(self, run: ChainRun, response: ChatResponse) -> RoutedResponse:
        return RoutedResponse(
            _answer(run, response),
            run.decision,
            tuple(run.attempts),
            run.request_id,
            tuple(self.escalations),
        )


def _ended_by(error: BaseException) -> str:
    """What ended a hand-over that reached no answer, in words for its record."""
    if isinstance(error, GeneratorExit):
        return "the caller stopped reading the stream"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return str(error) or type(error).__name__


def _answer(run: ChainRun, response: ChatResponse) -> ChatResponse:
    """`response` as the caller gets it: without the call to the `escalate` tool the router offered.
    A caller's own tool of that name is never offered over (see `offer_escalation`): its calls stay."""
    return without_escalation(response) if run.escalation_offered else response


def _offered_call_dropped(run: ChainRun, events: list[StreamEvent]) -> list[StreamEvent]:
    """Held-back events minus any pieces of a call to the offered `escalate` tool that could not be
    handed over (a call written out as the whole text: all the text); all of them when the router
    offered no such tool (the caller's own is kept)."""
    if not run.escalation_offered:
        return events
    done = events[-1]
    written = isinstance(done, StreamDone) and written_call(done.response.text) is not None
    dropped = {e.index for e in events if isinstance(e, ToolCallDelta) and e.name == ESCALATE_TOOL_NAME}
    if not dropped and not written:
        return events
    kept: list[StreamEvent] = []
    for event in events:
        if isinstance(event, ToolCallDelta) and event.index in dropped:
            continue
        if written and isinstance(event, TextDelta):
            continue
        if isinstance(event, StreamDone):
            event = StreamDone(without_escalation(event.response))
        kept.append(event)
    return kept


if TYPE_CHECKING:
    from ..cascades._gate import AskModel
