"""Running one decision's chain: call the model, fall back on failure, reserve and settle the budget.

`ChainRun` is one routed call to one decision: it walks the decision's chain (skipping models in
cooldown), reserves each attempt's estimated cost in the budget ledger before the provider call,
commits the real cost after it (streams too) and releases the reservation of a call that produced
nothing. Calls that broke mid-stream or were cancelled are committed at gearshift's estimate, since the
provider has likely billed them. Every attempt becomes an `Attempt` and a decision-log record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._context import StepContext
from ._decision import Decision
from ._errors import AllModelsFailed, BudgetExceeded, ProviderError
from ._messages import ChatRequest, ChatResponse, StreamDone, StreamEvent, TextDelta, ToolCallDelta, Usage
from ._models import ModelSpec
from ._records import Attempt, attempt_record
from ._routed import aclose_events
from ._tokens import estimate_tokens
from .policies import RouteInput
from .providers import Provider

if TYPE_CHECKING:
    from ._router import Router
    from .budgets import Reservation

__all__ = ["ChainRun"]


@dataclass(slots=True)
class ChainRun:
    """One decision being carried out. `sent` is what the models get (the caller's request, plus the
    `escalate` tool when it is offered); `attempts` is shared by every chain of one routed call."""

    router: Router
    request_id: str
    request: ChatRequest
    sent: ChatRequest
    context: StepContext
    route: RouteInput
    decision: Decision
    chain: tuple[str, ...]
    attempts: list[Attempt] = field(default_factory=list)
    escalation_offered: bool = False
    skipped: tuple[str, ...] = ()

    # -- complete -------------------------------------------------------------------------------

    async def complete(self) -> ChatResponse:
        """The first answer along the chain; raises `AllModelsFailed`, or `BudgetExceeded` when the
        budget refused every model it could have tried."""
        errors: list[ProviderError] = []
        refusal: BudgetExceeded | None = None
        for spec, provider in self._targets():
            try:
                reservation = await self._reserve(spec)
            except BudgetExceeded as exc:
                refusal = refusal or exc  # a pricier fallback may not fit where a cheaper one would
                continue
            started = self.router._clock()
            try:
                response = await provider.complete(spec, self.sent)
            except ProviderError as error:
                await self._settle(reservation, spec, Usage())
                self._failed(errors, spec, error, started)
                if not error.allows_fallback:
                    raise
                continue
            except asyncio.CancelledError:
                usage = self._estimated_usage("")
                await asyncio.shield(self._settle(reservation, spec, usage))
                self._cancelled(spec, started, usage, streamed=False)
                raise
            await self._settle(reservation, spec, response.usage, response.cost_usd)
            self._record(
                Attempt(spec.id, spec.provider, True, response.usage, response.cost_usd, self._ms(started))
            )
            self.router.cooldowns.on_success(spec.id)
            return response
        raise self._exhausted(errors, refusal)

    # -- stream ---------------------------------------------------------------------------------

    async def stream(self) -> AsyncGenerator[StreamEvent, None]:
        """The answer as events, `StreamDone` last. A model that fails before its first event is
        replaced by the next one of the chain; a break after it raises `ProviderError(kind="stream")`."""
        errors: list[ProviderError] = []
        refusal: BudgetExceeded | None = None
        for spec, provider in self._targets():
            try:
                reservation = await self._reserve(spec)
            except BudgetExceeded as exc:
                refusal = refusal or exc
                continue
            started = self.router._clock()
            events = provider.stream(spec, self.sent)
            try:
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    raise ProviderError(
                        "the stream ended before any event", model_id=spec.id, kind="stream"
                    ) from None
            except ProviderError as error:
                await aclose_events(events)
                await self._settle(reservation, spec, Usage())
                self._failed(errors, spec, error, started, streamed=True)
                if not error.allows_fallback:
                    raise
                continue
            except asyncio.CancelledError:
                await aclose_events(events)
                usage = self._estimated_usage("")
                await asyncio.shield(self._settle(reservation, spec, usage))
                self._cancelled(spec, started, usage, streamed=True)
                raise
            # The caller sees this model's output from here on: no more fallback.
            output: list[str] = []
            done = False
            try:
                while not isinstance(event, StreamDone):
                    output.append(event.text if isinstance(event, TextDelta) else _delta_text(event))
                    yield event
                    try:
                        event = await events.__anext__()
                    except StopAsyncIteration:
                        raise ProviderError(
                            "the stream ended without its final event", model_id=spec.id, kind="stream"
                        ) from None
                response = event.response
                done = True
                await self._settle(reservation, spec, response.usage, response.cost_usd)
                self._record(
                    Attempt(
                        spec.id,
                        spec.provider,
                        True,
                        response.usage,
                        response.cost_usd,
                        self._ms(started),
                        True,
                    )
                )
                self.router.cooldowns.on_success(spec.id)
                yield event
                return
            except ProviderError as error:
                text = "".join(output)
                usage = self._estimated_usage(text) if text else Usage()
                await self._settle(reservation, spec, usage)
                self._failed(errors, spec, error, started, streamed=True, usage=usage)
                raise
            except (GeneratorExit, asyncio.CancelledError):
                if not done:
                    usage = self._estimated_usage("".join(output))
                    await asyncio.shield(self._settle(reservation, spec, usage))
                    self._cancelled(spec, started, usage, streamed=True)
                raise
            finally:
                await aclose_events(events)
        raise self._exhausted(errors, refusal)

    # -- budget ---------------------------------------------------------------------------------

    async def _reserve(self, spec: ModelSpec) -> Reservation | None:
        ledger = self.router.budgets
        keys = self.context.spend_keys
        if ledger is None or not keys:
            return None
        route = self.route
        return await ledger.reserve(
            keys,
            usd=spec.estimate_cost(route.input_tokens, route.output_tokens),
            tokens=route.input_tokens + route.output_tokens,
            model_id=spec.id,
        )

    async def _settle(
        self, reservation: Reservation | None, spec: ModelSpec, usage: Usage, cost: float | None = None
    ) -> None:
        """Commit what the attempt cost, or release its reservation when it cost nothing."""
        ledger = self.router.budgets
        if ledger is None or reservation is None:
            return
        if usage == Usage():
            await ledger.release(reservation)
        else:
            usd = spec.cost(usage) if cost is None else cost
            await ledger.commit(reservation, usd=usd, tokens=usage.total_tokens)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _targets(self) -> Iterator[tuple[ModelSpec, Provider]]:
        router = self.router
        ready, self.skipped = router.cooldowns.order(self.chain, router._clock())
        for model_id in ready:
            spec = router.registry[model_id]
            yield spec, router.providers[spec.provider]

    def _exhausted(
        self, errors: list[ProviderError], refusal: BudgetExceeded | None
    ) -> AllModelsFailed | BudgetExceeded:
        if refusal is not None and not errors:
            return refusal
        message = f"all {len(errors)} models tried for this request failed"
        if self.skipped:
            message += f" (skipped while cooling down after recent failures: {', '.join(self.skipped)})"
        if refusal is not None:
            message += f" (models the budget did not allow were skipped: {refusal})"
        return AllModelsFailed(message, errors)

    def _ms(self, started: float) -> float:
        return (self.router._clock() - started) * 1000.0

    def _estimated_usage(self, output: str) -> Usage:
        # The provider may have processed (and billed) the input before the call broke or was dropped.
        return Usage(input_tokens=self.route.input_tokens, output_tokens=estimate_tokens(output))

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
        errors.append(error)
        self.router.cooldowns.on_failure(error, self.router._clock())

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
            usage_estimated=usage != Usage(),
        )

    def _record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        log = self.router.decision_log
        if log is not None:
            log.write(
                attempt_record(
                    request_id=self.request_id, ts=time.time(), attempt=attempt, context=self.context
                )
            )


def _delta_text(delta: ToolCallDelta) -> str:
    return (delta.name or "") + delta.arguments
