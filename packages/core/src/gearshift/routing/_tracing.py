"""What a routed call tells besides its decision log records: Python logging and OpenTelemetry spans.

`CallTrace` follows one routed call from start to answer (or error). When it ends it writes:

- one INFO line on the `gearshift` logger: the answer's model, tier, cost, latency and why, or why
  the call failed (the caller gets the error too, so it is not a warning); DEBUG lines for each
  attempt and fallback before it;
- with OpenTelemetry, one span per call and a child span per provider attempt, following the GenAI
  semantic conventions (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
  `gen_ai.response.model`, `gen_ai.usage.*`, `error.type`) plus `gearshift.*` attributes for the
  decision (tier, policy, reasons, estimated and actual cost, escalations, budget keys). Spans are
  made only when `opentelemetry` is imported by the application and a tracer provider is set;
- a `budget_refusal` record in the decision log when a hard budget limit refused the call;
- and, with shadow evaluation on, it hands the answered call to the router's `ShadowEvaluator`.

Prompts, answers and the reason a failed hand-over was asked for (the model's or a judge's own
words, which may quote the prompt) go into spans only when the decision log's `include_prompts`
allows it; log lines never carry them.
Attempt spans are made when the call ends, placed by when each attempt ended and how long it took
(the router records an attempt only once it is over); a streamed one says its time to first token,
and a tripped deployment's probe says it is one (`gearshift.probe`). A failed probe is no fallback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import BudgetExceeded, GearshiftError
from ._records import refusal_record
from ._routed import RoutedResponse, aclose_events

if TYPE_CHECKING:
    from .._context import StepContext
    from .._messages import ChatRequest
    from ._chain import ChainRun
    from ._records import Attempt
    from ._router_host import RouterHost

__all__ = ["CallTrace", "incoming_trace_context", "start_own_trace"]

logger = logging.getLogger("gearshift")

_T = TypeVar("_T")

_TRACER: tuple[object, Any] | None = None  # (the tracer provider, gearshift's tracer from it)


def _tracer() -> Any | None:
    """gearshift's tracer, or None when the application set up no OpenTelemetry tracer provider.

    The application must have imported OpenTelemetry to have set a provider, so gearshift never
    imports it itself: without OpenTelemetry this costs one dictionary lookup.
    """
    global _TRACER
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:
        return None
    provider = otel.get_tracer_provider()
    if isinstance(provider, (otel.ProxyTracerProvider, otel.NoOpTracerProvider)):
        return None
    if _TRACER is None or _TRACER[0] is not provider:
        _TRACER = (provider, provider.get_tracer("gearshift"))
    return _TRACER[1]


def start_own_trace() -> None:
    """Have the spans the current task makes from now on start a trace of their own.

    For work a call sets off in the background (a shadow): it is no part of the caller's work and
    outlives it, so it must not nest under whatever span was current when the call ended (the
    caller's own span, ended long before). The task's context is its own copy: nothing else changes.
    """
    context = sys.modules.get("opentelemetry.context")
    if context is not None:
        context.attach(context.Context())  # never detached: it lives and dies with the task's context


@contextmanager
def incoming_trace_context(headers: Mapping[str, str]) -> Iterator[None]:
    """Make the trace context an incoming request carries (W3C `traceparent`, or whatever the
    application's propagator reads) the current one, so the spans of the call it asks for join the
    caller's trace. Without a tracer provider, or without such headers, nothing changes."""
    if _tracer() is None:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)


class CallTrace:
    """One routed call, observed: started by the router, told its plan, ended with the answer or error."""

    __slots__ = ("_start_ns", "_started", "_tracer", "context", "router", "run", "span")

    def __init__(self, router: RouterHost, context: StepContext) -> None:
        self.router = router
        self.context = context
        self.run: ChainRun | None = None
        self._started = time.perf_counter()
        self._start_ns = time.time_ns()
        self._tracer = _tracer()
        self.span = (
            None if self._tracer is None else self._tracer.start_span("chat", start_time=self._start_ns)
        )

    # -- the call's lifetime --------------------------------------------------------------------

    @contextmanager
    def current(self) -> Iterator[None]:
        """Make the call's span the current one (so spans made inside the call nest under it)."""
        if self.span is None:
            yield
            return
        from opentelemetry import trace

        with trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield

    async def stream(self, events: AsyncIterator[_T]) -> AsyncGenerator[_T, None]:
        """`events` (a routed stream's items), ending the trace with the `RoutedResponse` among them,
        the error that ends them, or a cancellation when the caller stops early."""
        ended = False
        try:
            async for item in events:
                if isinstance(item, RoutedResponse):
                    ended = True
                    self.finish(item)
                yield item
            if not ended:  # cannot happen with the router's streams, which end with their answer
                ended = True
                self.fail(RuntimeError("the routed stream ended without an answer"))
        except BaseException as exc:
            if not ended:
                ended = True
                if isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
                    await aclose_events(events)  # type: ignore[arg-type]  # records the cancelled attempt first
                self.fail(exc)
            raise
        finally:
            await aclose_events(events)  # type: ignore[arg-type]

    def finish(self, result: RoutedResponse) -> None:
        """The call answered."""
        ms = (time.perf_counter() - self._started) * 1000.0
        attempts = result.attempts
        if logger.isEnabledFor(logging.DEBUG):
            self._debug(attempts)
        if logger.isEnabledFor(logging.INFO):
            decision = result.decision
            logger.info(
                "routed %s to %s (tier %d) in %.0f ms for $%.6f%s: %s",
                result.request_id,
                result.model_id,
                decision.tier,
                ms,
                result.cost_usd,
                _handovers(result),
                "; ".join(_own_reasons(result)) or decision.policy,
            )
        if self.span is not None:
            self._end_span(attempts, result)
        shadow = self.router.shadow
        if shadow is not None and self.run is not None:
            shadow.consider(self.router, self.run.request, self.context, result)

    def fail(self, error: BaseException | None) -> None:
        """The call ended without an answer: `error`, or None (or a cancellation) when the caller
        cancelled it."""
        if isinstance(error, (GeneratorExit, asyncio.CancelledError)):
            error = None
        attempts = tuple(self.run.attempts) if self.run is not None else ()
        request_id = self.run.request_id if self.run is not None else None
        if isinstance(error, GearshiftError) and error.request_id is None:
            error.request_id = request_id  # so its caller can find the call's records
        if isinstance(error, BudgetExceeded):
            self._record_refusal(request_id, error)
        if logger.isEnabledFor(logging.DEBUG):
            self._debug(attempts)
        if logger.isEnabledFor(logging.INFO):
            ms = (time.perf_counter() - self._started) * 1000.0
            what = "was cancelled" if error is None else f"failed ({type(error).__name__}: {error})"
            logger.info(
                "routed call %s %s after %.0f ms and %d attempts", request_id or "-", what, ms, len(attempts)
            )
        if self.span is not None:
            self._end_span(attempts, None, error)

    # -- records and log lines ------------------------------------------------------------------

    def _record_refusal(self, request_id: str | None, error: BudgetExceeded) -> None:
        log = self.router.decision_log
        if log is not None and request_id is not None:
            keys = self.router.spend_keys(self.context)
            log.write(
                refusal_record(
                    request_id=request_id, ts=time.time(), context=self.context, keys=keys, error=str(error)
                )
            )

    def _debug(self, attempts: tuple[Attempt, ...]) -> None:
        for i, attempt in enumerate(attempts):
            if attempt.ok:
                logger.debug(
                    "attempt %s on %s: ok in %.0f ms, %d in / %d out tokens, $%.6f",
                    attempt.model_id,
                    attempt.provider,
                    attempt.latency_ms,
                    attempt.usage.input_tokens,
                    attempt.usage.output_tokens,
                    attempt.cost_usd,
                )
                continue
            why = "cancelled" if attempt.cancelled else attempt.error.kind if attempt.error else "failed"
            logger.debug(
                "attempt %s on %s: %s after %.0f ms",
                attempt.model_id,
                attempt.provider,
                why,
                attempt.latency_ms,
            )
            if i + 1 < len(attempts) and _fell_back(attempt):
                logger.debug(
                    "fallback from %s to %s after %s", attempt.model_id, attempts[i + 1].model_id, why
                )

    # -- spans ----------------------------------------------------------------------------------

    def _end_span(
        self, attempts: tuple[Attempt, ...], result: RoutedResponse | None, error: BaseException | None = None
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        span, tracer = self.span, self._tracer
        assert span is not None  # only called when the call has a span
        assert tracer is not None
        end_ns = time.time_ns()
        registry = self.router.registry
        run = self.run
        decision = result.decision if result is not None else run.decision if run is not None else None
        prompts = self._prompts_allowed()
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        if decision is not None:
            requested = registry[decision.model]
            attributes.update(
                {
                    "gen_ai.request.model": requested.model,
                    "gearshift.model_id": decision.model,
                    "gearshift.tier": decision.tier,
                    "gearshift.policy": decision.policy,
                    "gearshift.reasons": list(
                        decision.reasons if result is None or prompts else _own_reasons(result)
                    ),
                    "gearshift.cost.estimated_usd": decision.estimated_cost_usd,
                    "gearshift.budget_changed": decision.budget_changed,
                }
            )
            span.update_name(f"chat {requested.model}")
        if run is not None:
            attributes["gearshift.request_id"] = run.request_id
            attributes.update(_request_settings(run.request))
        keys = self.router.spend_keys(self.context)
        if keys:
            attributes["gearshift.budget.keys"] = list(keys)
        if self.context.agent_id is not None:
            attributes["gearshift.agent_id"] = self.context.agent_id
        if self.context.run_id is not None:
            attributes["gearshift.run_id"] = self.context.run_id
        attributes["gearshift.step_type"] = self.context.step_type.value
        attributes["gearshift.cost.actual_usd"] = sum(a.cost_usd for a in attempts)
        attributes["gearshift.attempts"] = len(attempts)
        attributes["gen_ai.usage.input_tokens"] = sum(a.usage.input_tokens for a in attempts)
        attributes["gen_ai.usage.output_tokens"] = sum(a.usage.output_tokens for a in attempts)
        if result is not None:
            answered = registry[result.model_id]
            attributes["gen_ai.provider.name"] = self._api(answered.provider)
            attributes["gearshift.provider"] = answered.provider
            attributes["gen_ai.response.model"] = result.response.provider_model or answered.model
            attributes["gearshift.answered_by"] = result.model_id
            attributes["gearshift.escalations"] = len(result.escalations)
            if result.escalations:
                attributes["gearshift.escalation.sources"] = [e.source for e in result.escalations]
                attributes["gearshift.escalation.to"] = [e.to_model for e in result.escalations]
            if result.response.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = [result.response.finish_reason]
            if prompts:
                attributes["gen_ai.output.messages"] = _messages_json("assistant", result.response.text)
        if prompts and run is not None:
            attributes["gen_ai.input.messages"] = json.dumps(
                [
                    {"role": m.role, "parts": [{"type": "text", "content": m.text}]}
                    for m in run.request.messages
                ]
            )
        span.set_attributes(attributes)
        if result is None:
            span.set_attribute("error.type", "cancelled" if error is None else type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, "cancelled" if error is None else str(error)))
        parent = trace.set_span_in_context(span)
        for attempt in attempts:
            # Placed by when it ended and how long it took: attempts may overlap (a speculative call
            # and its classification); kept inside the call's span.
            stop = max(min(attempt.ended_ns, end_ns), self._start_ns)
            spec = registry[attempt.model_id]
            child = tracer.start_span(
                f"chat {spec.model}",
                context=parent,
                kind=SpanKind.CLIENT,
                start_time=max(stop - int(attempt.latency_ms * 1e6), self._start_ns),
            )
            child.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": self._api(attempt.provider),
                    "gearshift.provider": attempt.provider,
                    "gen_ai.request.model": spec.model,
                    "gen_ai.usage.input_tokens": attempt.usage.input_tokens,
                    "gen_ai.usage.output_tokens": attempt.usage.output_tokens,
                    "gearshift.model_id": attempt.model_id,
                    "gearshift.cost_usd": attempt.cost_usd,
                    "gearshift.streamed": attempt.streamed,
                    "gearshift.usage_estimated": attempt.usage_estimated,
                    "gearshift.probe": attempt.probe,
                }
            )
            if attempt.first_token_ms is not None:
                child.set_attribute("gearshift.time_to_first_token_ms", attempt.first_token_ms)
            if attempt.ok:
                child.set_attribute("gen_ai.response.model", spec.model)
            else:
                kind = "cancelled" if attempt.cancelled else attempt.error.kind if attempt.error else "error"
                child.set_attribute("error.type", kind)
                child.set_status(Status(StatusCode.ERROR, str(attempt.error) if attempt.error else kind))
            child.end(end_time=stop)
        span.end(end_time=end_ns)

    def _api(self, provider: str) -> str:
        """The API the configured `provider` speaks (`openai`, `anthropic`); a provider of the
        caller's own that does not say is named by its configuration."""
        api = getattr(self.router.providers.get(provider), "api", None)
        return api if isinstance(api, str) else provider

    def _prompts_allowed(self) -> bool:
        log = self.router.decision_log
        return bool(log is not None and log.include_prompts)


# The GenAI semantic conventions' request attributes, by the `ChatRequest` field each reports.
_REQUEST_SETTINGS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("seed", "gen_ai.request.seed"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
)


def _request_settings(request: ChatRequest) -> dict[str, Any]:
    """The settings the caller gave the call, as the caller gave them (a model may be sent a lower
    `max_tokens`, or none of a setting it does not take: the decision's reasons say so)."""
    settings = {name: getattr(request, field) for field, name in _REQUEST_SETTINGS}
    return {name: value for name, value in settings.items() if value is not None}


def _messages_json(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _own_reasons(result: RoutedResponse) -> tuple[str, ...]:
    """The decision's reasons in gearshift's own words: after a failed last hand-over the last one
    says which answer was kept and quotes why it was handed over (the model's or a judge's words,
    which may quote the prompt), so it is left out; `_handovers` says the hand-over failed. An earlier
    hand-over answered with nothing went on to a stronger model, whose reasons are all its own."""
    reasons = result.decision.reasons
    kept = bool(result.escalations) and result.escalations[-1].failed is not None
    return reasons[:-1] if kept else reasons


def _fell_back(attempt: Attempt) -> bool:
    """Whether `attempt` failed and the chain went on to another: a cancelled one was given up, and a
    tripped deployment's failed probe answered no request (as `gearshift report` counts them)."""
    return not attempt.ok and not attempt.cancelled and not attempt.probe


def _handovers(result: RoutedResponse) -> str:
    """`, after 1 fallback and 1 escalation (gate:judge)`, or nothing."""
    parts = []
    fallbacks = sum(1 for a in result.attempts if _fell_back(a))
    if fallbacks:
        parts.append(f"{fallbacks} fallback{'s' if fallbacks > 1 else ''}")
    if result.escalations:
        sources = ", ".join(
            e.source + (" failed" if e.failed is not None else "") for e in result.escalations
        )
        count = len(result.escalations)
        parts.append(f"{count} escalation{'s' if count > 1 else ''} ({sources})")
    return f", after {' and '.join(parts)}" if parts else ""
