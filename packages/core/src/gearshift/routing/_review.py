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

A hand-over answered with nothing (no text, no tool call: the cascade's `check_empty`) found no answer
either: it is logged `empty` and the step goes one tier further up (source `gate:empty`) when a hand-over
is still possible; else the caller gets the answer a failed hand-over keeps, or an `EmptyAnswer` error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .._context import CallerHints
from .._errors import AllModelsFailed, BudgetExceeded, EmptyAnswer
from .._messages import ChatRequest, ChatResponse, StreamDone, StreamEvent, TextDelta, ToolCallDelta
from ..cascades._gate import AnswerCheck
from ..cascades._heuristic import check_empty
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
        keep = run, response  # the last answer with something in it: what a failed hand-over keeps
        nothing: str | None = None  # how the last hand-over's answer was empty
        while True:
            reason = (nothing, _EMPTY) if nothing is not None else await self._review(run, response)
            if reason is None:
                return self._result(run, response)
            stronger = await self._escalate(run, response, *reason)
            try:
                answer = await stronger.complete()
            except (AllModelsFailed, BudgetExceeded) as exc:
                return self._kept(*keep, exc)
            nothing = self._answered_nothing(stronger, answer)
            if nothing is not None and not self._can_hand_over(stronger, answer):
                return self._kept(*keep, self._nothing_left(stronger, answer, nothing))
            self._settle("answered" if nothing is None else "empty", nothing)
            run, response = stronger, answer
            if nothing is None:
                keep = run, response

    async def _stream(self, run: ChainRun) -> AsyncGenerator[StreamEvent | RoutedResponse, None]:
        kept: tuple[ChainRun, list[StreamEvent]] | None = None  # what a failed hand-over releases
        while True:
            shown = False
            try:
                if not self._may_hand_over(run):
                    # A hand-over's answer says nothing until it says something: its blank first events
                    # wait, so that an answer that is empty all through was never shown.
                    blank: list[StreamEvent] = []
                    # aclosing: a caller that stops early must close the provider's stream now, not at GC.
                    async with aclosing(run.stream()) as events:
                        async for event in events:
                            if kept is not None and not shown and _says_nothing(event):
                                blank.append(event)
                                continue
                            if isinstance(event, StreamDone):
                                handed = kept is not None and not shown  # a hand-over's, blank so far
                                nothing = self._answered_nothing(run, event.response) if handed else None
                                if nothing is not None:
                                    raise self._nothing_left(run, event.response, nothing)
                                self._settle("answered")
                            shown = True
                            for held_event in (*blank, event):
                                yield held_event
                            blank.clear()
                            if isinstance(event, StreamDone):
                                yield self._result(run, event.response)
                    return
                async with aclosing(run.stream(held=True)) as events:
                    held = [event async for event in events]
                done = held[-1]
                assert isinstance(done, StreamDone)  # ChainRun.stream always ends with it
                nothing = None if kept is None else self._answered_nothing(run, done.response)
                if nothing is not None and not self._can_hand_over(run, done.response):
                    raise self._nothing_left(run, done.response, nothing)
            except (AllModelsFailed, BudgetExceeded, EmptyAnswer) as exc:
                if kept is None or shown:
                    raise
                for released in self._released(*kept, exc):
                    yield released
                return
            self._settle("answered" if nothing is None else "empty", nothing)
            reason = (nothing, _EMPTY) if nothing is not None else await self._review(run, done.response)
            if reason is None:
                for event in _offered_call_dropped(run, held):
                    yield event
                yield self._result(run, done.response)
                return
            if nothing is None:
                kept = (run, held)
            run = await self._escalate(run, done.response, *reason)

    # -- deciding to hand over ------------------------------------------------------------------

    def _higher_tier_exists(self, run: ChainRun, tier: int) -> bool:
        return any(m.tier > tier for m in run.route.candidates)

    def _can_hand_over(self, run: ChainRun, response: ChatResponse) -> bool:
        """Whether `response` may still go to a stronger model: one is left, and a hand-over too."""
        if len(self.escalations) >= self.router.max_escalations:
            return False
        return self._higher_tier_exists(run, self.router.registry[response.model_id].tier)

    def _may_hand_over(self, run: ChainRun) -> bool:
        if len(self.escalations) >= self.router.max_escalations:
            return False
        gated = self.router.cascade is not None and self._higher_tier_exists(run, run.decision.tier)
        return run.escalation_offered or gated

    async def _review(self, run: ChainRun, response: ChatResponse) -> tuple[str, str] | None:
        """(reason, source) when `response` must go to a stronger model, else None."""
        if not self._can_hand_over(run, response):
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

    def _settle(self, outcome: str, error: BaseException | str | None = None) -> None:
        """Log the last hand-over, if it is still open, now that it has ended: `outcome` is
        "answered" (the stronger model answered), "empty" (it answered with nothing, and the step goes
        one tier further up), "kept" (it found no answer and the caller got the weaker one) or "error"
        (its error, or a cancellation, reached the caller). `error` says why it found no answer."""
        nxt, self._handing_over = self._handing_over, None
        if nxt is None:
            return
        if error is not None and self.escalations[-1].failed is None:
            failed = error if isinstance(error, str) else _ended_by(error)
            self.escalations[-1] = replace(self.escalations[-1], failed=failed)
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

    def _answered_nothing(self, run: ChainRun, response: ChatResponse) -> str | None:
        """What is wrong with a hand-over's answer that has nothing in it, judged as a cascade's gate
        judges one (`check_empty`), naming the model; None for an answer."""
        if check_empty(run.request, _answer(run, response)) is None:
            return None
        tier = self.router.registry[response.model_id].tier
        said = f"{response.model_id} (tier {tier}) answered with nothing (no text, no tool call)"
        if response.finish_reason == "length":
            said += f"; max_tokens ({run.request.max_tokens}) cut it off before it wrote anything"
        return said

    def _nothing_left(self, run: ChainRun, response: ChatResponse, nothing: str) -> EmptyAnswer:
        """The error of a hand-over answered with nothing (`nothing`) that cannot go further up."""
        tier = self.router.registry[response.model_id].tier
        why = (
            f"routing.max_escalations ({self.router.max_escalations}) allows no further hand-over"
            if self._higher_tier_exists(run, tier)
            else "no stronger tier is left to ask"
        )
        return EmptyAnswer(f"{nothing}, and {why}; its answer cost ${response.cost_usd:.6f}")

    def _released(
        self, run: ChainRun, held: list[StreamEvent], error: AllModelsFailed | BudgetExceeded | EmptyAnswer
    ) -> list[StreamEvent | RoutedResponse]:
        """The held-back events of `run`'s answer, kept because its hand-over failed with `error`, and
        the result they make (see `_kept`)."""
        done = held[-1]
        assert isinstance(done, StreamDone)
        result = self._kept(run, done.response, error)
        return [*_offered_call_dropped(run, held), result]

    def _kept(
        self, run: ChainRun, response: ChatResponse, error: AllModelsFailed | BudgetExceeded | EmptyAnswer
    ) -> RoutedResponse:
        """`response`, whose hand-over failed with `error`, as the call's answer; `error` itself when
        there is nothing to keep (a self-escalation that said nothing beside its `escalate` call)."""
        answer = _answer(run, response)
        if not answer.text.strip() and not answer.tool_calls:
            raise error
        # The hand-over of `response` itself (a later one went on from an answer with nothing in it).
        escalation = next(e for e in reversed(self.escalations) if e.from_model == response.model_id)
        self.escalations[-1] = replace(self.escalations[-1], failed=str(error))
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
        if isinstance(error, BudgetExceeded):
            why = f"the budget refused the stronger call ({error})"
        elif isinstance(error, EmptyAnswer):
            why = str(error)
        else:
            why = f"every stronger model failed ({error})"
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


_EMPTY = "gate:empty"
"""The source of handing a hand-over's answer that has nothing in it one tier further up."""


def _says_nothing(event: StreamEvent) -> bool:
    """Whether `event` adds nothing to an answer yet: whitespace text."""
    return isinstance(event, TextDelta) and not event.text.strip()


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
