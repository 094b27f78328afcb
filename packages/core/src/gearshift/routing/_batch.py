"""Batched cascades for asynchronous work: the cheap model answers the whole batch, a gate checks every
answer, and only the answers it rejects are sent again to the strongest model.

`run_batch` is what `Router.abatch` runs. Items are worked on concurrently up to a limit; a call that
failed only because every model of its chain was rate-limited waits (the longest `retry-after` the
providers sent, else a doubling pause) and is tried again, and while one item waits the others do not
start new calls either, since they would hit the same limit. Each finished stage of an item is handed
to `on_result` as soon as it is known, so a caller that writes results as they come (`gearshift
batch`) can resume after an interruption without paying twice for what was finished: an item whose
cheap answer was already rejected is given back with `escalate=True` and starts at the strong stage.
A stage cut off (the batch cancelled: Ctrl-C) hands over what it had before the cancellation goes on:
an answer that had come, a cheap one still being checked as unchecked (given back as `answer`, with
what the gate had received as `asked`, it is checked without paying for either again), or else what
its cut-off calls were charged.

Without `cascade`, each item is simply routed by the router's policy (and its own cascade, if any). A
routed item cut off keeps every answer the router had received for it (`kept`: its model's, a
classifier's, its cascade judge's), and given back as the item's `kept`, they answer the same questions
when it is routed again (see `_kept_answers`), so the router reaches its answer paying only for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, TypeVar

from .._context import CallerHints, StepContext
from .._errors import AllModelsFailed, GearshiftError, InvalidRequestError, ProviderError
from .._messages import ChatRequest, ChatResponse, RequestLike, Usage, as_request
from .._models import ModelRegistry
from ..cascades._gate import AnswerCheck, AskModel, QualityGate
from ._eligibility import hint_refusal
from ._kept_answers import KeptAnswer, answering_from, keeping
from ._planning import aplan_call
from ._records import Attempt
from ._review import ReviewLoop
from ._routed import RoutedResponse
from ._spend_tally import watching

if TYPE_CHECKING:
    from ._chain import ChainRun
    from ._router_host import RouterHost

__all__ = ["BatchItem", "BatchResult", "BatchSummary", "run_batch", "summarize_batch"]

BatchStage = Literal["routed", "cheap", "strong"]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request of a batch. `escalate` starts it at the strong stage (its cheap answer was already
    rejected, in an earlier run that was interrupted). `answer` is a cheap answer an earlier run
    received but was cut off checking: the gate checks it without a cheap call, and the gate's calls
    to a model are answered first from `asked`, what that run's gate had already received. `kept` are
    the answers an earlier run's routed call for it received before it was cut off: routed again, it is
    answered from them first."""

    id: str
    request: ChatRequest
    context: StepContext = field(default_factory=StepContext)
    escalate: bool = False
    answer: ChatResponse | None = None
    asked: tuple[ChatResponse, ...] = ()
    kept: tuple[KeptAnswer, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One finished stage of one item.

    `accepted` is true for the item's final answer: a routed answer, a cheap answer the gate passed, or
    the strong answer. A cheap answer the gate rejected has `accepted=False` and `reason` says why;
    one whose check was cut off (the batch was cancelled) has `checked=False` too, and `asked` holds
    the answers the gate had received. `error` is set (and `response` None) when the stage failed or
    was cut off before its answer; such an item has no answer, `attempts` holds what its calls were
    charged, and a routed stage's `kept` the answers it had received (give them back as the item's).
    """

    id: str
    stage: BatchStage
    accepted: bool
    response: RoutedResponse | None = None
    reason: str = ""
    error: str | None = None
    attempts: tuple[Attempt, ...] = ()
    checked: bool = True
    asked: tuple[ChatResponse, ...] = ()
    kept: tuple[KeptAnswer, ...] = ()

    @property
    def cost_usd(self) -> float:
        """What this stage cost, failed and cut-off attempts included."""
        if self.response is not None:
            return self.response.cost_usd
        return sum(attempt.cost_usd for attempt in self.attempts)

    @property
    def usage(self) -> Usage:
        """Tokens this stage used over all its attempts."""
        if self.response is not None:
            return self.response.usage
        return sum((attempt.usage for attempt in self.attempts), Usage())


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch did: items answered and failed, how many went to the strong model, what it cost,
    and an estimate of what always calling the strongest model would have cost."""

    items: int
    answered: int
    failed: int
    escalated: int
    cost_usd: float
    strongest_cost_usd: float

    @property
    def escalation_rate(self) -> float:
        """Share of the answered items that the strong model answered after the gate."""
        return self.escalated / self.answered if self.answered else 0.0

    @property
    def savings(self) -> float:
        """Share of the always-strongest cost saved (negative when the batch cost more)."""
        return 1.0 - self.cost_usd / self.strongest_cost_usd if self.strongest_cost_usd else 0.0


@dataclass(frozen=True, slots=True)
class StageRecord:
    """The figures of one finished stage a summary needs, as `gearshift batch` stores them."""

    id: str
    stage: BatchStage
    accepted: bool
    failed: bool
    cost_usd: float
    usage: Usage  # of its final attempt: cached input apart, for the always-strongest counterfactual
    escalated: bool = False  # a routed answer the router's own review handed to a stronger model


def summarize_batch(records: Iterable[StageRecord | BatchResult], registry: ModelRegistry) -> BatchSummary:
    """The summary of a batch from its results, or the stage records `gearshift batch` journals (of one
    run, or of every run of a resumed batch).

    Always-strongest is priced on the tokens each item really used: a strong answer at what it cost,
    any other at the strongest model's prices for the tokens of its final stage, cached input at its
    cached rate (its output length on the strongest model is unknown; this is the estimate).
    """
    strongest = registry.strongest
    by_item: dict[str, list[StageRecord]] = {}
    for item in records:
        record = stage_record(item) if isinstance(item, BatchResult) else item
        by_item.setdefault(record.id, []).append(record)
    cost = strongest_cost = 0.0
    answered = failed = escalated = 0
    for stages in by_item.values():
        cost += sum(s.cost_usd for s in stages)
        final = next((s for s in reversed(stages) if s.accepted and not s.failed), None)
        if final is None:
            failed += 1
            continue
        answered += 1
        if final.stage == "strong" or final.escalated:
            escalated += 1
        if final.stage == "strong":
            strongest_cost += final.cost_usd
        else:
            strongest_cost += strongest.cost(final.usage)
    return BatchSummary(len(by_item), answered, failed, escalated, cost, strongest_cost)


def stage_record(result: BatchResult) -> StageRecord:
    """The summary figures of one result (the tokens of the call that made its answer)."""
    # The answer's own call: a judge's calls join the stage's account, and come after it.
    usage = Usage() if result.response is None else result.response.response.usage
    return StageRecord(
        result.id,
        result.stage,
        result.accepted,
        result.error is not None,
        result.cost_usd,
        usage,
        result.response is not None and result.response.escalated,
    )


async def run_batch(
    router: RouterHost,
    items: Iterable[BatchItem | RequestLike],
    *,
    concurrency: int = 8,
    cascade: bool = False,
    gate: QualityGate | None = None,
    on_result: Callable[[BatchResult], None] | None = None,
    max_rate_limit_waits: int = 6,
    base_wait_seconds: float = 1.0,
) -> list[BatchResult]:
    """Run a batch through `router`; returns every stage result, in the order they finished.

    With `cascade`, every item is first answered by the bottom tier, `gate` (default: the router's
    cascade gate, else the no-cost `HeuristicGate`) checks each answer, and the rejected ones are sent
    to the top tier; an item's own caller hints narrow both to the tiers they allow, and an item held
    to one tier is answered once, unchecked. A failed item gives a result with `error` and does not
    stop the batch.
    """
    if concurrency < 1:
        raise GearshiftError(f"concurrency must be 1 or more, got {concurrency}")
    batch = _Batch(router, concurrency, max_rate_limit_waits, base_wait_seconds, on_result)
    work = _items(items)
    if not cascade:
        await batch.each(work, batch.routed)
        return batch.results
    if gate is None:
        from ..cascades._heuristic import HeuristicGate

        gate = router.cascade or HeuristicGate()
    batch.gate = gate
    rejected = [item for item in work if item.escalate]
    cheap = await batch.each([item for item in work if not item.escalate], batch.cheap)
    rejected.extend(item for item, passed in cheap if passed is False)
    await batch.each(rejected, batch.strong)
    return batch.results


def _stage_tiers(registry: ModelRegistry, hints: CallerHints) -> tuple[int, ...]:
    """The tiers an item's own hints leave its cascade, weakest first: its cheap stage is the first,
    its strong stage the last. A forced model leaves its own tier; none left, and the planner says why.
    """
    return tuple(sorted({model.tier for model in registry if hint_refusal(model, hints) is None}))


def _routed(run: ChainRun, response: ChatResponse) -> RoutedResponse:
    """The stage's answer with every attempt so far: its calls, and any its gate made."""
    return RoutedResponse(response, run.decision, tuple(run.attempts), run.request_id)


def _kept_first(ask: AskModel, run: ChainRun, kept: list[ChatResponse]) -> AskModel:
    """`ask`, answered first from `kept` (what an earlier run's gate received from each model, in
    order): a check cut off and done again pays no model twice for the same question."""

    async def asked(model_id: str, request: ChatRequest) -> ChatResponse:
        for index, answer in enumerate(kept):
            if answer.model_id == model_id:
                run.answers.append(kept.pop(index))  # kept again should this check be cut off too
                return answer
        return await ask(model_id, request)

    return asked


_CUT_OFF = "cut off: the batch was stopped during this call; a resumed run asks for what it had not received"


class _Underway:
    """One stage of one item while it runs: every attempt recorded for it (its calls and its gate's)
    and the run making its answer, whose `answers` are kept as they arrive. What it has when cut off
    is recorded rather than lost: an answer received is not bought again, and a call cut off mid-way
    (charged at gearshift's estimate, as the ledger charges it) counts in the batch's cost."""

    def __init__(self, item: BatchItem, stage: BatchStage, *, checked: bool = False) -> None:
        self.item = item
        self.stage = stage
        self.checked = checked  # a cheap stage whose answer the gate checks
        self.run: ChainRun | None = None
        self.attempts: list[Attempt] = []
        self.received: list[KeptAnswer] = []  # every answer received in this stage
        self.unused: list[KeptAnswer] = []  # the item's kept answers not given back yet

    @contextmanager
    def watched(self) -> Iterator[None]:
        """Note every attempt recorded in this block (a gate's too), and every answer received; a routed
        stage is answered from the item's kept answers first."""
        with ExitStack() as stack:
            stack.enter_context(watching(self.attempts.append))
            stack.enter_context(keeping(self.received.append))
            if self.stage == "routed":
                self.unused = stack.enter_context(answering_from(self.item.kept))
            yield

    @property
    def kept(self) -> tuple[KeptAnswer, ...]:
        """What a routed call done again is answered from: what this one received, and what it was
        given to answer from and did not reach."""
        return (*self.received, *self.unused) if self.stage == "routed" else ()

    def failed(self, error: GearshiftError) -> BatchResult:
        return BatchResult(
            self.item.id, self.stage, True, error=str(error), attempts=tuple(self.attempts), kept=self.kept
        )

    def cut_off(self) -> BatchResult | None:
        """The result to record for this stage, stopped now: its answer if it has one (the cheap one
        unchecked, when the gate was still checking it), else what its calls were charged; None when
        it made no call."""
        run, item = self.run, self.item
        answers = [] if run is None else list(run.answers)
        answer = item.answer if item.answer is not None else (answers.pop(0) if answers else None)
        if run is None or answer is None:
            if not self.attempts and not self.kept:
                return None
            return BatchResult(
                item.id, self.stage, True, error=_CUT_OFF, attempts=tuple(self.attempts), kept=self.kept
            )
        routed = _routed(run, answer)
        if not self.checked:
            return BatchResult(item.id, self.stage, True, routed)
        reason = "cut off before the gate's verdict; a resumed run checks this answer"
        return BatchResult(item.id, "cheap", False, routed, reason, checked=False, asked=tuple(answers))


def _items(items: Iterable[BatchItem | RequestLike]) -> list[BatchItem]:
    """The batch's items, a bare request's id its index. One that cannot be routed, or an id used
    twice (whose results no one could tell apart), is an error naming the item, before any call."""
    work: list[BatchItem] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            one = item if isinstance(item, BatchItem) else BatchItem(str(index), as_request(item))
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"batch item {index}: {exc}") from None
        if one.id in seen:
            raise InvalidRequestError(
                f"batch item {index}: id {one.id!r} is already used by item {seen[one.id]}; "
                "give each item its own id"
            )
        seen[one.id] = index
        work.append(one)
    return work


class _Batch:
    """The shared state of one batch run: the concurrency limit, the rate-limit pause, the results."""

    def __init__(
        self,
        router: RouterHost,
        concurrency: int,
        max_waits: int,
        base_wait: float,
        on_result: Callable[[BatchResult], None] | None,
    ) -> None:
        self.router = router
        self.concurrency = concurrency
        self.max_waits = max_waits
        self.base_wait = base_wait
        self.on_result = on_result
        self.results: list[BatchResult] = []
        self.gate: QualityGate | None = None
        self._resume_at = 0.0  # loop time before which no new call starts (a rate limit was hit)

    async def each(
        self, items: list[BatchItem], stage: Callable[[BatchItem], Awaitable[bool | None]]
    ) -> list[tuple[BatchItem, bool | None]]:
        """Run `stage` on every item, `concurrency` at a time; (item, gate passed?) for each, in order.

        As many workers as calls may be in flight take the next item when one is done: a task for
        every item at once held memory for the whole batch (20,000 lines, 20,000 waiting tasks)."""
        passed: list[bool | None] = [None] * len(items)
        pending = iter(enumerate(items))

        async def worker() -> None:
            for index, item in pending:
                passed[index] = await stage(item)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # One worker failed (`on_result` could not record a result): the others' calls are cancelled
            # and settled before the error goes on, rather than left running as the router closes.
            for running in workers:
                running.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return list(zip(items, passed, strict=True))

    async def routed(self, item: BatchItem) -> bool | None:
        underway = _Underway(item, "routed")
        with underway.watched():
            try:
                routed = await self._call(lambda: self.router.acomplete(item.request, item.context))
            except GearshiftError as error:
                return self._emit(underway.failed(error))
            except asyncio.CancelledError:
                self._emit_cut_off(underway)
                raise
        return self._emit(BatchResult(item.id, "routed", True, routed))

    async def cheap(self, item: BatchItem) -> bool | None:
        tiers = _stage_tiers(self.router.registry, item.context.hints)
        underway = _Underway(item, "cheap", checked=len(tiers) > 1)
        with underway.watched():
            try:
                hints = CallerHints(max_tier=tiers[0] if tiers else None)
                if item.answer is None:
                    run, response = await self._planned(item, hints, underway)
                else:  # an earlier run received it and was cut off checking it: it is checked now
                    run = underway.run = await self._plan(item, hints)
                    response = item.answer
                verdict = None  # unchecked: nothing stronger to send a rejected answer to
                if underway.checked:
                    assert self.gate is not None  # set before the cheap stage runs
                    ask = _kept_first(ReviewLoop(self.router, False)._ask(run), run, list(item.asked))
                    check = AnswerCheck(item.request, response, run.decision, item.context, ask)
                    verdict = await self.gate.check(check)
            except GearshiftError as error:
                return self._emit(underway.failed(error))
            except asyncio.CancelledError:
                self._emit_cut_off(underway)
                raise
        if verdict is None:
            return self._emit(BatchResult(item.id, "cheap", True, _routed(run, response)))
        reason = "" if verdict.accept else verdict.reason or f"the {verdict.gate} gate rejected the answer"
        return self._emit(BatchResult(item.id, "cheap", verdict.accept, _routed(run, response), reason))

    async def strong(self, item: BatchItem) -> bool | None:
        tiers = _stage_tiers(self.router.registry, item.context.hints)
        underway = _Underway(item, "strong")
        with underway.watched():
            try:
                hints = CallerHints(min_tier=tiers[-1] if tiers else None)
                run, response = await self._planned(item, hints, underway)
            except GearshiftError as error:
                return self._emit(underway.failed(error))
            except asyncio.CancelledError:
                self._emit_cut_off(underway)
                raise
        return self._emit(BatchResult(item.id, "strong", True, _routed(run, response)))

    async def _plan(self, item: BatchItem, hints: CallerHints) -> ChainRun:
        """The run that answers `item` from the tier range of `hints`, with no escalation of its own
        (the batch's gate decides); planned, not yet called."""
        given = item.context.hints
        hints = replace(
            given,
            min_tier=hints.min_tier if hints.min_tier is not None else given.min_tier,
            max_tier=hints.max_tier if hints.max_tier is not None else given.max_tier,
        )
        return await aplan_call(self.router, item.request, replace(item.context, hints=hints), escalate=False)

    async def _planned(
        self, item: BatchItem, hints: CallerHints, underway: _Underway
    ) -> tuple[ChainRun, ChatResponse]:
        """One answer from the tier range of `hints`, and the run that made it (kept on `underway`
        from the start, so a stage cut off still has the answer it received)."""

        async def call() -> tuple[ChainRun, ChatResponse]:
            run = underway.run = await self._plan(item, hints)
            return run, await run.complete()

        return await self._call(call)

    async def _call(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """`make()` awaited, waiting out rate limits: when every model of the chain was rate-limited,
        pause every new call of the batch for the longest retry-after (else a doubling pause)."""
        loop = asyncio.get_running_loop()
        for wait in range(self.max_waits + 1):
            pause = self._resume_at - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            try:
                return await make()
            except AllModelsFailed as failed:
                errors = [e for e in failed.exceptions if isinstance(e, ProviderError)]
                if wait == self.max_waits or not errors or any(e.kind != "rate_limit" for e in errors):
                    raise
                hinted = [e.retry_after for e in errors if e.retry_after is not None]
                seconds = max(hinted) if hinted else self.base_wait * 2**wait
                self._resume_at = max(self._resume_at, loop.time() + seconds)
        raise AssertionError("unreachable: the last wait re-raises")  # pragma: no cover

    def _emit(self, result: BatchResult) -> bool | None:
        """Record `result`; whether its item is answered for now (None: it failed)."""
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        return None if result.error is not None else result.accepted

    def _emit_cut_off(self, underway: _Underway) -> None:
        """Record what a stage cut off (the batch was cancelled: Ctrl-C) had received and paid for, so
        that a resumed batch neither buys it again nor leaves its cost out of the summary."""
        result = underway.cut_off()
        if result is not None:
            self._emit(result)
