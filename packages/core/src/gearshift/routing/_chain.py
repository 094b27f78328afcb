"""Running one decision's chain: call the model, fall back on failure, reserve and settle the budget.

`ChainRun` is one routed call to one decision: it walks the decision's chain (skipping models in
cooldown), reserves each attempt's estimated cost in the budget ledger before the provider call,
commits the real cost after it (streams too) and releases the reservation of a call that produced
nothing. Calls that broke mid-stream (or after the provider's 200, before any chunk), timed out, were
hung up on once sent or were cancelled are committed at gearshift's estimate, since the provider has
likely billed them (a call not streamed at its output cap: the provider writes the whole answer after
the client gave up); so is a call a provider of the caller's own broke off with an error of its own
(not a `ProviderError`), which is then passed on. An answer is charged as `charged_answer` prices it,
whichever provider gave it: counts its provider left out estimated, a cost it left at 0 priced.
Every attempt becomes an `Attempt` and a decision-log record.

Under a limit that refuses, each attempt's reservation is a bound: the model is asked for no more
output than was reserved for it (`_budget_fit.output_cap`), a provider that bills more anyway has the
whole cost recorded (the limit is then spent and refuses what follows) and a `budget_overrun` record
in the decision log. A model the budget refused is not replaced by a pricier one of the chain.

A step is planned against what the budget had left when it read the ledger; parallel calls may
reserve part of that before the step reserves. When the budget refuses every model the chain may
try, the run is planned again (`replan`) against what is really left now, if that is less than it
was planned with: a smaller output cap, or a cheaper model, as a step planned now would get. When even
that does not fit but only because of what other running calls hold (the spend and the step's own
reservation fit the limit), the step waits for them to settle (`BudgetLedger.wait_for_room`, up to the
ledger's `wait_seconds`) and is planned again: each holds its worst case and most commit far less, so
the calls a limit pays for by their real cost are served in turn rather than refused. It is refused
when the spend itself leaves no room, or the wait runs out; the ledger's atomic reservation, of the
worst case, still has the last word, so waiting never lets a call past a limit.

A model with several deployments is tried deployment by deployment, healthiest and fastest first
(`_deployments`); each call's latency and failure feeds their health, and the model itself cools
down only once every deployment is tripped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .._context import StepContext
from .._decision import Decision
from .._errors import AllModelsFailed, BudgetExceeded, ProviderError
from .._messages import ChatRequest, ChatResponse, StreamDone, StreamEvent, TextDelta, ToolCallDelta, Usage
from .._models import ModelSpec
from ..policies import RouteInput
from ..providers import Provider
from ..providers._reported_usage import charged_answer
from ..signals._tokens import estimate_request_tokens, estimate_tokens
from ._budget_fit import billed_input, output_cap, reserved_cost
from ._deployments import PROBE_REQUEST, deployment_key
from ._kept_answers import given_back, note_answer
from ._records import Attempt, attempt_record, overrun_record
from ._routed import aclose_events
from ._sent_input import added_tokens
from ._spend_tally import note_attempt

if TYPE_CHECKING:
    from ..budgets import Allowance, Reservation
    from ._chain_host import ChainHost

__all__ = ["MAX_REPLANS", "ChainRun", "Replan"]

MAX_REPLANS = 3
"""How often one run is planned again after budget refusals: each time parallel calls reserved more
of what was left; past that, under such contention, the refusal stands."""

Replan = Callable[["ChainRun", bool], Awaitable[bool]]
"""Plans a run again against what the budget has left now (its decision, chain and allowance); False
when the budget has no less left than the run was planned with, so planning again would change nothing,
unless the flag (`anew`: other calls have settled meanwhile) asks for a plan whatever is left."""

logger = logging.getLogger("gearshift.budgets")


@dataclass(slots=True)
class ChainRun:
    """One decision being carried out. `sent` is what the models get (the caller's request, plus the
    `escalate` tool when it is offered); `attempts` is shared by every chain of one routed call.
    `answers` holds every answer received on the run's account as it arrived (its own first, then
    those of the extra calls that share its attempts, a judge's), before its cost was committed: a
    caller cancelled during that wait still has what it paid for. `allowance` is what the budget
    allowed when the decision was made (None: no limit applies)."""

    router: ChainHost
    request_id: str
    request: ChatRequest
    sent: ChatRequest
    context: StepContext
    route: RouteInput
    decision: Decision
    chain: tuple[str, ...]
    attempts: list[Attempt] = field(default_factory=list)
    answers: list[ChatResponse] = field(default_factory=list)
    escalation_offered: bool = False
    skipped: tuple[str, ...] = ()
    allowance: Allowance | None = None
    replan: Replan | None = None
    _refused: _Refusal | None = field(default=None, init=False)  # the budget's last refusal, kept
    _replans: int = field(default=0, init=False)
    _wait_until: float | None = field(default=None, init=False)  # monotonic; set at the first wait

    # -- complete -------------------------------------------------------------------------------

    async def complete(self) -> ChatResponse:
        """The first answer along the chain; raises `AllModelsFailed`, or `BudgetExceeded` when the
        budget refused every model it could have tried, even planned against what is left now."""
        while True:
            try:
                return await self._complete_chain()
            except BudgetExceeded as refused:
                if not await self._replanned(refused):
                    raise

    async def _complete_chain(self) -> ChatResponse:
        errors: list[ProviderError] = []
        refusal = self._refused
        async for spec, provider in self._targets(streamed=False):
            hold = self._hold(spec, provider)
            kept = given_back(spec.id, hold.request)
            if kept is not None:  # received before the call was cut off (see `_kept_answers`)
                self.answers.append(kept)
                return kept
            if refusal is not None and hold.usd > refusal.usd:
                continue  # the budget refused a cheaper model: it must not move the step up in price
            try:
                reservation = await self._reserve(spec, hold)
            except BudgetExceeded as exc:
                refusal = self._refused = _refusal(refusal, exc, hold.usd)
                continue
            started = self.router.clock()
            try:
                response = await provider.complete(spec, hold.request)
            except ProviderError as error:
                usage = self._unanswered_usage(
                    error, input_tokens=hold.input_tokens, unread_output=hold.output_tokens
                )
                await self._settle(reservation, spec, usage)
                self._failed(errors, spec, error, started, usage=usage)
                if not error.allows_fallback:
                    raise
                continue
            except asyncio.CancelledError:
                # Recorded before any await: a caller under anyio (the MCP server's tool calls) is
                # cancelled again at every await until it ends, so nothing after one is sure to run;
                # the shielded settlement, a task of its own, runs to its end either way.
                usage = self._estimated_usage(
                    "", input_tokens=hold.input_tokens, unread_output=hold.output_tokens
                )
                self._cancelled(spec, started, usage, streamed=False)
                await asyncio.shield(self._settle(reservation, spec, usage))
                raise
            except Exception:
                await self._foreign_failure(reservation, spec, hold, started, "", streamed=False)
                raise
            response = charged_answer(response, spec, hold.input_tokens)
            # Recorded before the commit's wait: a caller that gives up during it still paid for the
            # answer, and the decision log must say so as the ledger does.
            latency = self._ms(started)
            self._record(_answered(spec, response, latency), response)
            note_answer(spec.id, hold.request, response)
            self.router.cooldowns.on_success(spec.id)
            self.router.deployments.on_success(spec, answer_ms=latency)
            await self._settle(reservation, spec, response.usage, response.cost_usd)
            return response
        raise self._exhausted(errors, refusal.error if refusal else None)

    # -- stream ---------------------------------------------------------------------------------

    async def stream(self, *, held: bool = False) -> AsyncGenerator[StreamEvent, None]:
        """The answer as events, `StreamDone` last. A model that fails before its first event is
        replaced by the next one of the chain; a break after it raises `ProviderError(kind="stream")`.

        `held`: the caller holds the events back until the answer is done (an answer that may still be
        handed over), so no one has seen a model's output when its stream breaks: the model's events
        come all at once with its `StreamDone`, and a break falls back along the chain as a failure
        before the first event does (the broken call is still charged at gearshift's estimate).
        A stream the budget refused before any event is planned again as `complete` is."""
        while True:
            shown = False
            try:
                async with aclosing(self._stream_chain(held)) as events:
                    async for event in events:
                        shown = True
                        yield event
                return
            except BudgetExceeded as refused:
                if shown or not await self._replanned(refused):
                    raise

    async def _stream_chain(self, held: bool) -> AsyncGenerator[StreamEvent, None]:
        errors: list[ProviderError] = []
        refusal = self._refused
        async for spec, provider in self._targets(streamed=True):
            hold = self._hold(spec, provider)
            if refusal is not None and hold.usd > refusal.usd:
                continue
            try:
                reservation = await self._reserve(spec, hold)
            except BudgetExceeded as exc:
                refusal = self._refused = _refusal(refusal, exc, hold.usd)
                continue
            started = self.router.clock()
            events = provider.stream(spec, hold.request)
            try:
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    raise ProviderError(
                        "the stream ended before any event", model_id=spec.id, kind="stream"
                    ) from None
            except ProviderError as error:
                await aclose_events(events)
                usage = self._unanswered_usage(error, input_tokens=hold.input_tokens)
                await self._settle(reservation, spec, usage)
                self._failed(errors, spec, error, started, streamed=True, usage=usage)
                if not error.allows_fallback:
                    raise
                continue
            except asyncio.CancelledError:
                usage = self._estimated_usage("", input_tokens=hold.input_tokens)
                self._cancelled(spec, started, usage, streamed=True)
                settled = asyncio.shield(self._settle(reservation, spec, usage))  # started now
                await aclose_events(events)
                await settled
                raise
            except Exception:
                await aclose_events(events)
                await self._foreign_failure(reservation, spec, hold, started, "", streamed=True)
                raise
            # The caller sees this model's output from here on (unless it is held): no more fallback.
            first_event_ms = self._ms(started)
            output: list[str] = []
            unseen: list[StreamEvent] = []
            done = False
            try:
                while not isinstance(event, StreamDone):
                    output.append(event.text if isinstance(event, TextDelta) else _delta_text(event))
                    if held:
                        unseen.append(event)
                    else:
                        yield event
                    try:
                        event = await events.__anext__()
                    except StopAsyncIteration:
                        raise ProviderError(
                            "the stream ended without its final event", model_id=spec.id, kind="stream"
                        ) from None
                response = charged_answer(event.response, spec, hold.input_tokens, "".join(output))
                event = StreamDone(response)
                done = True
                self._record(
                    _answered(
                        spec, response, self._ms(started), streamed=True, first_token_ms=first_event_ms
                    ),
                    response,
                )
                self.router.cooldowns.on_success(spec.id)
                self.router.deployments.on_success(spec, first_token_ms=first_event_ms)
                await self._settle(reservation, spec, response.usage, response.cost_usd)  # recorded first
                for seen in unseen:
                    yield seen
                yield event
                return
            except ProviderError as error:
                text = "".join(output)
                usage = (
                    self._unanswered_usage(error, input_tokens=hold.input_tokens, output=text)
                    if text or error.reported_tokens
                    else Usage()
                )
                await self._settle(reservation, spec, usage)
                self._failed(errors, spec, error, started, streamed=True, usage=usage)
                if done or not held or not error.allows_fallback:
                    raise
            except (GeneratorExit, asyncio.CancelledError):
                if not done:
                    usage = self._estimated_usage("".join(output), input_tokens=hold.input_tokens)
                    self._cancelled(spec, started, usage, streamed=True)
                    await asyncio.shield(self._settle(reservation, spec, usage))
                raise
            except Exception:
                if not done:  # (once done, the answer was settled: what failed came after)
                    await self._foreign_failure(
                        reservation, spec, hold, started, "".join(output), streamed=True
                    )
                raise
            finally:
                await aclose_events(events)
        raise self._exhausted(errors, refusal.error if refusal else None)

    # -- budget ---------------------------------------------------------------------------------

    async def _replanned(self, refused: BudgetExceeded) -> bool:
        """After the budget refused every model the chain could try: whether the run was planned again
        against what is left now (parallel calls reserved part of what it was planned with), or, once
        that is no help, after waiting for other calls to settle when only what they hold stood in
        the way."""
        if self.replan is None:
            return False
        if self._replans < MAX_REPLANS:
            self._replans += 1
            if await self.replan(self, False):
                return True
        if not await self._waited_for_room(refused):
            return False
        self._replans, self._refused = 0, None  # a new plan: what refused it was held, and has moved
        return await self.replan(self, True)

    async def _waited_for_room(self, refused: BudgetExceeded) -> bool:
        """Whether the step waited for other calls to settle: only when what they hold is all that
        refused it (the spend and its own request fit the limit) and the ledger's wait has not run
        out."""
        ledger = self.router.budgets
        if ledger is None or not refused.reserved or refused.spent + refused.requested > refused.limit:
            return False
        now = time.monotonic()
        if self._wait_until is None:
            self._wait_until = now + ledger.wait_seconds
        if now >= self._wait_until:
            return False
        await ledger.wait_for_room(self._wait_until - now)
        return True

    def _hold(self, spec: ModelSpec, provider: Provider) -> _Hold:
        """What an attempt on `spec` through `provider` reserves, and the request it sends (output
        capped to match)."""
        route = self.route
        request = self.sent
        if request is not self.request and not any(m.tier > spec.tier for m in route.candidates):
            # A fallback at the top tier has no one to hand the step to: offered `escalate`, it could
            # only call it for nothing, and its answer would lose that call (an empty answer).
            request = self.request
        # The `escalate` tool's schema is billed as input too, and what the provider's API adds.
        input_tokens = route.input_tokens + added_tokens(self.request, request, spec, provider)
        billed = billed_input(self.request, input_tokens)
        cap = output_cap(
            spec,
            billed,
            self.allowance,
            requested=self.request.max_tokens,
            default=self.router.default_output_tokens,
        )
        output = route.output_tokens if cap is None else cap
        if cap is not None and request.max_tokens is None:
            request = replace(request, max_tokens=cap)
        usd = reserved_cost(spec, replace(billed, output_tokens=output))
        return _Hold(usd, input_tokens + output, request, input_tokens, output)

    async def _reserve(self, spec: ModelSpec, hold: _Hold) -> Reservation | None:
        ledger = self.router.budgets
        if ledger is None:
            return None
        keys = self.router.spend_keys(self.context)
        return await ledger.reserve(keys, usd=hold.usd, tokens=hold.tokens, model_id=spec.id)

    async def _settle(
        self, reservation: Reservation | None, spec: ModelSpec, usage: Usage, cost: float | None = None
    ) -> None:
        """Commit what the attempt cost, or release its reservation when it cost nothing."""
        ledger = self.router.budgets
        if ledger is None or reservation is None:
            return
        if usage == Usage():
            await ledger.release(reservation)
            return
        usd = spec.cost(usage) if cost is None else cost
        await ledger.commit(reservation, usd=usd, tokens=usage.total_tokens)
        if self.allowance is not None and self.allowance.refuses and _overran(reservation, usd, usage):
            self._overrun(reservation, spec, usd, usage)

    async def _foreign_failure(
        self,
        reservation: Reservation | None,
        spec: ModelSpec,
        hold: _Hold,
        started: float,
        output: str,
        *,
        streamed: bool,
    ) -> None:
        """Settle and record an attempt a provider of the caller's own broke off with an error of its
        own (the built-in ones raise only `ProviderError`): whether it was billed is unknown, so it is
        charged at gearshift's estimate of its input and `output` (for a call not streamed, the
        output it was allowed), as a cancelled call is, and never left held (the heartbeat would keep
        its reservation for hours)."""
        unread = 0 if streamed else hold.output_tokens
        usage = self._estimated_usage(output, input_tokens=hold.input_tokens, unread_output=unread)
        await self._settle(reservation, spec, usage)
        self._record(self._unanswered(spec, started, usage, streamed))

    def _overrun(self, reservation: Reservation, spec: ModelSpec, usd: float, usage: Usage) -> None:
        """A provider billed more than the reservation that was to bound it: all of it was recorded
        (so the limit refuses what follows once passed); say so in the log and the decision log."""
        keys = ", ".join(reservation.keys)
        logger.warning(
            "budget overrun: %s billed $%.9f and %d tokens for a call reserved at $%.9f and %d tokens on %s",
            spec.id,
            usd,
            usage.total_tokens,
            reservation.usd,
            reservation.tokens,
            keys,
        )
        log = self.router.decision_log
        if log is not None:
            log.write(
                overrun_record(
                    request_id=self.request_id,
                    ts=time.time(),
                    context=self.context,
                    model_id=spec.id,
                    keys=reservation.keys,
                    reserved=(reservation.usd, reservation.tokens),
                    billed=(usd, usage.total_tokens),
                )
            )

    # -- bookkeeping ----------------------------------------------------------------------------

    def _targets(self, *, streamed: bool) -> AsyncIterator[tuple[ModelSpec, Provider]]:
        """The models of the chain not cooling down, each as its deployments in the order to try
        them for this kind of call; a tripped deployment whose probe is due answers the probe first
        (`_deployments`)."""
        return _Targets(self, streamed)

    async def _deployment_order(self, model: ModelSpec, *, streamed: bool) -> list[ModelSpec]:
        """`model`'s deployments in the order to try them, after the probes that are due; while every
        one is tripped and another caller probes one, once that probe has ended."""
        router = self.router
        while (probe := router.deployments.probe_in_flight(model, router.clock())) is not None:
            await probe
        order, due = router.deployments.order(model, router.clock(), streamed=streamed)
        if due:
            failed: set[str] = set()
            try:
                for deployment in due:
                    if not await self._probe(deployment, router.providers[deployment.provider]):
                        failed.add(deployment_key(deployment))
            finally:  # a probe the budget refused, or one cancelled, leaves it due for the next caller
                for deployment in due:
                    router.deployments.end_probe(deployment)
            order, _ = router.deployments.order(model, router.clock(), streamed=streamed, probe=False)
            # A deployment that has just failed its probe gets no real call in the same breath,
            # unless nothing else is left (then a call that might succeed beats a sure failure).
            order = [d for d in order if deployment_key(d) not in failed] or order
        return order

    async def _probe(self, spec: ModelSpec, provider: Provider) -> bool:
        """One tiny call to a tripped deployment: it closes the breaker or trips it again. It is
        billed, so it is budgeted, charged and recorded as an attempt like any call (one that timed
        out or was cancelled is charged its input at gearshift's estimate); a budget that refuses it
        leaves the deployment tripped. Returns whether it answered."""
        tokens = estimate_request_tokens(PROBE_REQUEST)
        hold = _Hold(spec.estimate_cost(tokens, 1), tokens + 1, PROBE_REQUEST, tokens, 1)
        try:
            reservation = await self._reserve(spec, hold)
        except BudgetExceeded:
            return False
        started = self.router.clock()
        try:
            response = await provider.complete(spec, PROBE_REQUEST)
        except ProviderError as error:
            usage = self._unanswered_usage(error, input_tokens=tokens)
            await self._settle(reservation, spec, usage)
            self._record(self._unanswered(spec, started, usage, False, error=error, probe=True))
            self.router.deployments.on_failure(spec, error, self.router.clock(), probe=True)
            return False
        except asyncio.CancelledError:
            usage = Usage(input_tokens=tokens)
            self._record(self._unanswered(spec, started, usage, False, cancelled=True, probe=True))
            await asyncio.shield(self._settle(reservation, spec, usage))
            raise
        except Exception:
            usage = Usage(input_tokens=tokens)
            await self._settle(reservation, spec, usage)
            self._record(self._unanswered(spec, started, usage, False, probe=True))
            raise
        response = charged_answer(response, spec, tokens)
        await self._settle(reservation, spec, response.usage, response.cost_usd)
        self._record(_answered(spec, response, self._ms(started), probe=True))
        self.router.deployments.on_success(spec)  # a one-token 'ping' times no kind of real call
        return True

    def _exhausted(
        self, errors: list[ProviderError], refusal: BudgetExceeded | None
    ) -> AllModelsFailed | BudgetExceeded:
        if refusal is not None and self.request.max_tokens is None:
            refusal = refusal.for_uncapped_call()
        if refusal is not None and not errors:
            return refusal
        models = len({e.model_id for e in errors})
        if len(errors) == 1:
            message = "the one model tried for this request failed"
        elif models != len(errors):  # a model's deployments were tried one after another
            counted = f"{len(errors)} attempts ({models} model{'s' * (models != 1)})"
            message = f"all {counted} tried for this request failed"
        else:
            message = f"all {models} models tried for this request failed"
        if self.skipped:
            message += f" (skipped while cooling down after recent failures: {', '.join(self.skipped)})"
        if refusal is not None:
            message += f" (models the budget did not allow were skipped: {refusal})"
        return AllModelsFailed(message, errors)

    def _ms(self, started: float) -> float:
        return (self.router.clock() - started) * 1000.0

    def _unanswered_usage(
        self,
        error: ProviderError,
        *,
        input_tokens: int,
        output: str = "",
        unread_output: int = 0,
    ) -> Usage:
        """What a call that failed cost (`input_tokens` sent), `output` having reached the caller:
        nothing, unless the provider took it: a call that timed out, one the provider hung up on once
        it had the whole request (`received`), a stream that broke after the provider's 200 (kind
        `stream`), a 200 answer that could not be read or finished with an error (`accepted`). The
        provider then has the request and bills it, as for a cancelled call: what it reported before
        it failed (Anthropic's `message_start` gives the prompt's counts, cache writes and all), else
        its input at gearshift's estimate, and the output at least as estimated from what was
        received; a call not streamed that timed out or was hung up on, the output it was allowed
        (`unread_output`: the provider goes on to write the whole answer after the client stopped
        waiting, and bills it; the connection that dropped may be only a proxy's in front of a model
        that went on, which gearshift cannot tell from a crash that stopped it, and the ledger must
        not read less than the bill may be). Refused calls (an error status, no connection) cost
        nothing."""
        if error.reported_tokens:
            reported = Usage(**error.reported_tokens)
            return replace(reported, output_tokens=max(reported.output_tokens, estimate_tokens(output)))
        unanswered = error.kind == "timeout" or error.received  # it has the request; no answer came
        if not output and not unanswered and error.kind != "stream" and not error.accepted:
            return Usage()
        unread = unread_output if unanswered else 0
        return self._estimated_usage(output, input_tokens=input_tokens, unread_output=unread)

    def _estimated_usage(self, output: str, *, input_tokens: int, unread_output: int = 0) -> Usage:
        """A call's usage at gearshift's estimate: its input (`input_tokens`, as its hold counted
        them), and the output received (`output`), or
        `unread_output` when more: what a call not streamed may write, and be billed for, after
        gearshift stopped waiting for it (it was cancelled or timed out): the cap it was sent."""
        # The provider may have processed (and billed) the input before the call broke or was dropped.
        return Usage(input_tokens=input_tokens, output_tokens=max(estimate_tokens(output), unread_output))

    def _failed(
        self,
        errors: list[ProviderError],
        spec: ModelSpec,
        error: ProviderError,
        started: float,
        *,
        streamed: bool = False,
        usage: Usage | None = None,
    ) -> None:
        # A stream that broke after output was produced was billed for it: estimated, never dropped.
        self._record(self._unanswered(spec, started, usage or Usage(), streamed, error=error))
        router, now = self.router, self.router.clock()
        router.deployments.on_failure(spec, error, now)
        model = router.registry[spec.id]
        if model.deployments:
            error.deployment = deployment_key(spec)
        errors.append(error)
        # A model with other deployments cools down only once all of them are tripped.
        if not model.deployments or router.deployments.all_tripped(model, now):
            router.cooldowns.on_failure(error, now)

    def _cancelled(self, spec: ModelSpec, started: float, usage: Usage, *, streamed: bool) -> None:
        self._record(self._unanswered(spec, started, usage, streamed, cancelled=True))

    def _unanswered(
        self,
        spec: ModelSpec,
        started: float,
        usage: Usage,
        streamed: bool,
        *,
        error: ProviderError | None = None,
        cancelled: bool = False,
        probe: bool = False,
    ) -> Attempt:
        """An attempt that produced no answer; any usage it has is gearshift's estimate."""
        return Attempt(
            spec.id,
            spec.provider,
            False,
            usage,
            spec.cost(usage),
            self._ms(started),
            streamed,
            error=error,
            cancelled=cancelled,
            usage_estimated=usage != Usage() and not (error is not None and error.reported_tokens),
            probe=probe,
        )

    def _record(self, attempt: Attempt, response: ChatResponse | None = None) -> None:
        """Keep `attempt` and log it, with its answer (`response`) when the log records prompts."""
        self.attempts.append(attempt)
        if response is not None:
            self.answers.append(response)
        note_attempt(attempt)
        if attempt.ok and not attempt.probe:  # a probe's 'ping' warms no prompt cache of the run
            self.router.warm_caches.note(
                self.context.run_id, attempt.model_id, attempt.usage, self.router.clock()
            )
        log = self.router.decision_log
        if log is not None:
            log.write(
                attempt_record(
                    request_id=self.request_id,
                    ts=time.time(),
                    attempt=attempt,
                    context=self.context,
                    answer=response if log.include_prompts else None,
                )
            )


def _overran(reservation: Reservation, usd: float, usage: Usage) -> bool:
    # Whole nano-dollars, as the stores compare: float noise is not an overrun.
    return round(usd * 1e9) > round(reservation.usd * 1e9) or usage.total_tokens > reservation.tokens


class _Targets:
    """`ChainRun._targets` as a plain async iterator, not an async generator: a call that returns with
    its first model leaves the iteration unfinished, and asyncio closes an unfinished async generator
    in a task of its own, woken through the loop's self-pipe, after every such call."""

    def __init__(self, run: ChainRun, streamed: bool) -> None:
        self._run = run
        self._streamed = streamed
        self._ready: Iterator[str] | None = None
        self._pending: Iterator[ModelSpec] = iter(())

    def __aiter__(self) -> _Targets:
        return self

    async def __anext__(self) -> tuple[ModelSpec, Provider]:
        run = self._run
        router = run.router
        if self._ready is None:  # read when iteration starts, as the generator did
            ready, run.skipped = router.cooldowns.order(run.chain, router.clock())
            self._ready = iter(ready)
        while True:
            spec = next(self._pending, None)
            if spec is not None:
                return spec, router.providers[spec.provider]
            model_id = next(self._ready, None)
            if model_id is None:
                raise StopAsyncIteration
            model = router.registry[model_id]
            self._pending = iter(await run._deployment_order(model, streamed=self._streamed))


@dataclass(frozen=True, slots=True)
class _Hold:
    """What one attempt reserves (`usd`, `tokens`, of which `input_tokens` input, the tools it sends
    included, and `output_tokens` output) and the request it sends."""

    usd: float
    tokens: int
    request: ChatRequest
    input_tokens: int
    output_tokens: int  # the output it holds for: the cap sent, or the estimate of an uncapped call


@dataclass(frozen=True, slots=True)
class _Refusal:
    """The first reservation the budget refused in a chain, and the dollars it asked for."""

    error: BudgetExceeded
    usd: float


def _refusal(first: _Refusal | None, error: BudgetExceeded, usd: float) -> _Refusal:
    """The refusal to keep: the latest error (it says what is left now), at the cheapest hold refused
    (a model dearer than that is not tried after it)."""
    return _Refusal(error, usd if first is None else min(usd, first.usd))


def _answered(
    spec: ModelSpec,
    response: ChatResponse,
    latency_ms: float,
    *,
    streamed: bool = False,
    first_token_ms: float | None = None,
    probe: bool = False,
) -> Attempt:
    """The attempt that gave `response`, as `charged_answer` made it: usage estimated when it says so."""
    return Attempt(
        spec.id,
        spec.provider,
        True,
        response.usage,
        response.cost_usd,
        latency_ms,
        streamed,
        usage_estimated=response.metadata.get("usage_estimated") is True,
        first_token_ms=first_token_ms,
        probe=probe,
    )


def _delta_text(delta: ToolCallDelta) -> str:
    return (delta.name or "") + delta.arguments
