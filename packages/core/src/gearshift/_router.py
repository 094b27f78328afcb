"""The router: decide, call the provider, fall back, record every attempt.

`Router` is the only part of the core that awaits providers. Decisions come from the pure pipeline in
`_routing`; which model to try next after a failure comes from the decision's chain and the
`CooldownTracker`. Every decision and every attempt (failed, cancelled and streamed ones included)
becomes a record in the decision log when one is configured, and is returned to the caller in
`RoutedResponse.attempts`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ._bridge import run_sync
from ._context import StepContext
from ._cooldown import CooldownTracker
from ._decision import Decision
from ._decision_log import DecisionLog
from ._errors import AllModelsFailed, ConfigError, ProviderError
from ._messages import (
    ChatRequest,
    RequestLike,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    as_request,
)
from ._models import ModelRegistry, ModelSpec
from ._records import Attempt, attempt_record, decision_record
from ._routed import RoutedResponse, RoutedStream, SyncRoutedStream, aclose_events
from ._routing import DEFAULT_OUTPUT_TOKENS, route_input
from ._tokens import estimate_tokens
from .policies import Policy, RouteInput
from .providers import Provider

if TYPE_CHECKING:
    from ._config import GearshiftConfig

__all__ = ["Router"]


@dataclass(slots=True)
class _Call:
    """One routed call in flight."""

    request_id: str
    request: ChatRequest
    context: StepContext
    route: RouteInput
    decision: Decision
    chain: tuple[str, ...]
    skipped: tuple[str, ...] = ()


class Router:
    """Routes chat requests to the models of a registry.

    Build one from `gearshift.toml` with `Router.from_config()`, or in Python from a registry, a
    policy and providers keyed by the provider name their models use. Async methods are the real
    ones; `complete` and `stream` run them through gearshift's single sync bridge.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        policy: Policy,
        providers: Mapping[str, Provider] | Iterable[Provider],
        decision_log: DecisionLog | None = None,
        cooldowns: CooldownTracker | None = None,
        default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
        fallback_to_lower_tiers: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.providers: dict[str, Provider] = (
            dict(providers) if isinstance(providers, Mapping) else {p.name: p for p in providers}
        )
        missing = {m.id: m.provider for m in registry if m.provider not in self.providers}
        if missing:
            model_id, provider = next(iter(missing.items()))
            raise ConfigError(
                f"model '{model_id}' is served by provider '{provider}', but no provider of that name "
                f"was given (have: {', '.join(sorted(self.providers)) or 'none'})",
                key=f"models.{model_id}.provider",
            )
        if default_output_tokens <= 0:
            raise ConfigError(
                f"must be positive, got {default_output_tokens}", key="routing.default_output_tokens"
            )
        self.decision_log = decision_log
        self.cooldowns = cooldowns or CooldownTracker()
        self.default_output_tokens = default_output_tokens
        self.fallback_to_lower_tiers = fallback_to_lower_tiers
        self._clock = clock

    @classmethod
    def from_config(cls, config: GearshiftConfig | str | Path | None = None) -> Router:
        """A router built from a `GearshiftConfig` or a gearshift.toml.

        `None` looks for `$GEARSHIFT_CONFIG`, then `./gearshift.toml`, then uses the built-in registry
        of OpenAI and Anthropic models. Building does no network I/O and reads no key yet.
        """
        from ._config import GearshiftConfig, load_config
        from ._decision_log import open_decision_log
        from .policies import RulesPolicy, ScorerConfig, SignalScorer
        from .providers._factory import build_providers

        if not isinstance(config, GearshiftConfig):
            config = load_config(config)
        registry = config.registry()
        routing = config.routing
        policy: Policy = SignalScorer(ScorerConfig.from_config(routing.scorer, source=config.source))
        if routing.policy == "rules":
            policy = RulesPolicy.from_config(
                routing.rules, fallback=policy, source=config.source, registry=registry
            )
        log = config.log
        return cls(
            registry,
            policy=policy,
            providers=build_providers(config),
            decision_log=(
                open_decision_log(log.path, include_prompts=log.include_prompts) if log.path else None
            ),
            cooldowns=CooldownTracker(routing.cooldown_seconds, routing.max_cooldown_seconds),
            default_output_tokens=routing.default_output_tokens,
            fallback_to_lower_tiers=routing.fallback_to_lower_tiers,
        )

    def __repr__(self) -> str:
        return (
            f"Router(models={list(self.registry.ids)}, policy={self.policy.name!r}, "
            f"providers={sorted(self.providers)})"
        )

    # -- deciding -------------------------------------------------------------------------------

    def decide(self, request: RequestLike, context: StepContext | None = None) -> Decision:
        """The decision for a request, without calling any model (and without a log record)."""
        return self._plan(as_request(request), context or StepContext(), log=False).decision

    def _plan(self, request: ChatRequest, context: StepContext, *, log: bool = True) -> _Call:
        route = route_input(self.registry, request, context, default_output_tokens=self.default_output_tokens)
        decision = self.policy.decide(route)
        chain = decision.chain
        if self.fallback_to_lower_tiers:
            lower = [m.id for m in reversed(route.candidates) if m.tier < decision.tier]
            chain = (*chain, *lower)
        call = _Call(uuid.uuid4().hex, request, context, route, decision, chain)
        if log:
            self._log_decision(call)
        return call

    # -- calling --------------------------------------------------------------------------------

    async def acomplete(self, request: RequestLike, context: StepContext | None = None) -> RoutedResponse:
        """Route the request and return the first model's answer that succeeds along the chain.

        Raises `ProviderError` at once for a request the provider refuses as malformed, and
        `AllModelsFailed` when every model of the chain failed.
        """
        call = self._plan(as_request(request), context or StepContext())
        attempts: list[Attempt] = []
        errors: list[ProviderError] = []
        for spec, provider in self._targets(call):
            started = self._clock()
            try:
                response = await provider.complete(spec, call.request)
            except ProviderError as error:
                self._failed(call, attempts, errors, spec, error, started)
                if not error.allows_fallback:
                    raise
                continue
            except asyncio.CancelledError:
                self._cancelled(call, attempts, spec, started, output="", streamed=False)
                raise
            attempt = Attempt(
                spec.id, spec.provider, True, response.usage, response.cost_usd, self._ms(started)
            )
            self._record(call, attempts, attempt)
            self.cooldowns.on_success(spec.id)
            return RoutedResponse(response, call.decision, tuple(attempts), call.request_id)
        raise _all_failed(call, errors)

    def complete(self, request: RequestLike, context: StepContext | None = None) -> RoutedResponse:
        """`acomplete` for synchronous callers."""
        return run_sync(self.acomplete(request, context))

    def astream(self, request: RequestLike, context: StepContext | None = None) -> RoutedStream:
        """Route the request and stream the answer: text and tool-call deltas, then one `StreamDone`.

        The decision is made at once (`RoutedStream.decision`). A model that fails before its first
        delta is replaced by the next one of the chain; a break after the first delta raises
        `ProviderError(kind="stream")`, since the caller has already seen part of an answer.
        """
        call = self._plan(as_request(request), context or StepContext())
        return RoutedStream(call.decision, call.request_id, self._stream(call))

    def stream(self, request: RequestLike, context: StepContext | None = None) -> SyncRoutedStream:
        """`astream` for synchronous callers."""
        return SyncRoutedStream(self.astream(request, context))

    async def _stream(self, call: _Call) -> AsyncIterator[StreamEvent | RoutedResponse]:
        attempts: list[Attempt] = []
        errors: list[ProviderError] = []
        for spec, provider in self._targets(call):
            started = self._clock()
            events = provider.stream(spec, call.request)
            try:
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    raise ProviderError(
                        "the stream ended before any event", model_id=spec.id, kind="stream"
                    ) from None
            except ProviderError as error:
                await aclose_events(events)
                self._failed(call, attempts, errors, spec, error, started, streamed=True)
                if not error.allows_fallback:
                    raise
                continue
            except asyncio.CancelledError:
                await aclose_events(events)
                self._cancelled(call, attempts, spec, started, output="", streamed=True)
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
                attempt = Attempt(
                    spec.id, spec.provider, True, response.usage, response.cost_usd, self._ms(started), True
                )
                self._record(call, attempts, attempt)
                self.cooldowns.on_success(spec.id)
                done = True
                yield event
                yield RoutedResponse(response, call.decision, tuple(attempts), call.request_id)
                return
            except ProviderError as error:
                self._failed(
                    call, attempts, errors, spec, error, started, streamed=True, output="".join(output)
                )
                raise
            except (GeneratorExit, asyncio.CancelledError):
                if not done:
                    self._cancelled(call, attempts, spec, started, output="".join(output), streamed=True)
                raise
            finally:
                await aclose_events(events)
        raise _all_failed(call, errors)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _targets(self, call: _Call) -> Iterator[tuple[ModelSpec, Provider]]:
        ready, call.skipped = self.cooldowns.order(call.chain, self._clock())
        for model_id in ready:
            spec = self.registry[model_id]
            yield spec, self.providers[spec.provider]

    def _ms(self, started: float) -> float:
        return (self._clock() - started) * 1000.0

    def _estimated_usage(self, call: _Call, output: str) -> Usage:
        return Usage(input_tokens=call.route.input_tokens, output_tokens=estimate_tokens(output))

    def _failed(
        self,
        call: _Call,
        attempts: list[Attempt],
        errors: list[ProviderError],
        spec: ModelSpec,
        error: ProviderError,
        started: float,
        *,
        streamed: bool = False,
        output: str = "",
    ) -> None:
        # A stream that broke after output was produced was billed for it: estimate, never drop it.
        usage = self._estimated_usage(call, output) if output else Usage()
        self._record(call, attempts, self._unanswered(spec, started, usage, streamed, error=error))
        errors.append(error)
        self.cooldowns.on_failure(error, self._clock())

    def _cancelled(
        self,
        call: _Call,
        attempts: list[Attempt],
        spec: ModelSpec,
        started: float,
        *,
        output: str,
        streamed: bool,
    ) -> None:
        # The provider may have processed (and billed) the input before the caller gave up.
        usage = self._estimated_usage(call, output)
        self._record(call, attempts, self._unanswered(spec, started, usage, streamed, cancelled=True))

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

    def _record(self, call: _Call, attempts: list[Attempt], attempt: Attempt) -> None:
        attempts.append(attempt)
        if self.decision_log is not None:
            self.decision_log.write(
                attempt_record(
                    request_id=call.request_id, ts=time.time(), attempt=attempt, context=call.context
                )
            )

    def _log_decision(self, call: _Call) -> None:
        if self.decision_log is not None:
            self.decision_log.write(
                decision_record(
                    request_id=call.request_id,
                    ts=time.time(),
                    decision=call.decision,
                    context=call.context,
                    request=call.request,
                    include_prompt=self.decision_log.include_prompts,
                )
            )

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and close the decision log."""
        if self.decision_log is not None:
            self.decision_log.close()

    async def aclose(self) -> None:
        """Close the providers' SDK clients of the running event loop, then the decision log."""
        for provider in self.providers.values():
            aclose = getattr(provider, "aclose", None)  # optional: not every provider holds a client
            if aclose is not None:
                await aclose()
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Router:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _all_failed(call: _Call, errors: list[ProviderError]) -> AllModelsFailed:
    message = f"all {len(errors)} models tried for this request failed"
    if call.skipped:
        message += f" (skipped while cooling down after recent failures: {', '.join(call.skipped)})"
    return AllModelsFailed(message, errors)


def _delta_text(delta: ToolCallDelta) -> str:
    return (delta.name or "") + delta.arguments
