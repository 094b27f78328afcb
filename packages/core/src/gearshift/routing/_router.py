"""The router: decide, call the provider, fall back, escalate, keep the budget, record every attempt.

`Router` is the only part of the core that awaits providers. `_planning` plans each step: a decision
from the pure pipeline in `_decide`, fitted to the budget by `_budget_fit`, becomes a `ChainRun`
(`_chain`), which carries it out along its fallback chain with budget reservations; `ReviewLoop`
(`_review`) hands an answer to a stronger model when the answering model asked to escalate or a
cascade's gate rejected it. Every decision,
attempt and escalation becomes a record in the decision log when one is configured, and is returned
to the caller in the `RoutedResponse`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .._bridge import run_on_bridge, run_on_bridge_if_started, run_sync
from .._context import StepContext
from .._decision import Decision
from .._errors import ConfigError
from .._messages import RequestLike, StreamEvent, as_request
from .._models import ModelRegistry
from ..policies import Policy
from ..providers import Provider
from ._cache_write_prices import with_cache_write_prices
from ._cooldown import CooldownTracker
from ._decide import DEFAULT_OUTPUT_TOKENS
from ._decision_log import DecisionLog
from ._deployments import DeploymentHealth, Prefer
from ._planning import aplan_call, aprepare_step, decide_step, escalates, plan_call
from ._records import SCHEMA_VERSION
from ._review import ReviewLoop
from ._routed import RoutedResponse, RoutedStream, SyncRoutedStream
from ._tracing import CallTrace
from ._warm_cache import WarmCaches

if TYPE_CHECKING:
    from ..budgets import BudgetLedger
    from ..cascades._gate import QualityGate
    from ..config._config import GearshiftConfig
    from ..escalation import EscalationModel, LiveEscalation
    from ._batch import BatchItem, BatchResult
    from ._shadow import ShadowConfig, ShadowEvaluator

__all__ = ["Router"]


class Router:
    """Routes chat requests to the models of a registry.

    Build one from `gearshift.toml` with `Router.from_config()`, or in Python from a registry, a
    policy and providers keyed by the provider name their models use. Async methods are the real
    ones; `complete` and `stream` run them through gearshift's single sync bridge.

    `budgets` is a `BudgetLedger`: each attempt's estimated cost is reserved against the step's spend
    keys before the call and the real cost committed after it. Under a limit that refuses, the
    reservation is a bound: the call's output is capped at what was reserved for it.
    `self_escalation` offers models below the top tier an `escalate` tool; `cascade` is a quality
    gate for cheaper models' answers. `max_escalations` caps the hand-overs of one call.

    `escalation` is the learned escalation (an `EscalationModel`, or a `LiveEscalation` to set
    stickiness): on every step, when the run so far predicts failure above its threshold, the step
    goes to the next tier up, and the run (told apart by `StepContext.run_id`) stays there.
    `deployments` tracks the health and latency of every deployment of every model (a model served
    from several places is called where it is healthiest and fastest); `prefer = "latency"` moves a
    decision to the fastest model of its tier. Within a run (`StepContext.run_id`), a decision stays
    on the model whose prompt cache is warm when that is no weaker and cheaper than moving
    (`_warm_cache`).

    `shadow` (a `ShadowConfig`) has a sampled share of answered calls also answered by another model
    (the reference, or the cheapest one for calls at the reference's tier) in the background and both
    answers judged, recorded as `shadow` records (see `_shadow`).
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
        budgets: BudgetLedger | None = None,
        self_escalation: bool = False,
        cascade: QualityGate | None = None,
        max_escalations: int = 2,
        escalation: EscalationModel | LiveEscalation | None = None,
        shadow: ShadowConfig | ShadowEvaluator | None = None,
        deployments: DeploymentHealth | None = None,
        prefer: Prefer = "cost",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.providers: dict[str, Provider] = (
            dict(providers) if isinstance(providers, Mapping) else {p.name: p for p in providers}
        )
        served = [(m.id, m.provider, f"models.{m.id}.provider") for m in registry]
        served += [
            (m.id, d.provider, f"models.{m.id}.deployments[{i}].provider")
            for m in registry
            for i, d in enumerate(m.deployments)
        ]
        missing = [(model_id, name, key) for model_id, name, key in served if name not in self.providers]
        if missing:
            model_id, provider, key = missing[0]
            raise ConfigError(
                f"model '{model_id}' is served by provider '{provider}', but no provider of that name "
                f"was given (have: {', '.join(sorted(self.providers)) or 'none'})",
                key=key,
            )
        # Anthropic bills a cache write at 1.25x input: prices that leave the rate out get it here,
        # however the registry was built (see `_cache_write_prices`).
        registry = self.registry = with_cache_write_prices(registry, self.providers)
        if prefer not in ("cost", "latency"):
            raise ConfigError(f"must be 'cost' or 'latency', got {prefer!r}", key="routing.prefer")
        if default_output_tokens <= 0:
            raise ConfigError(
                f"must be positive, got {default_output_tokens}", key="routing.default_output_tokens"
            )
        if max_escalations < 0:
            raise ConfigError(f"must be 0 or more, got {max_escalations}", key="routing.max_escalations")
        self.decision_log = decision_log
        if decision_log is not None and getattr(policy, "on_recalibrate", False) is None:
            # A recalibrating policy reports each recalibration; the log keeps it.
            policy.on_recalibrate = lambda record: decision_log.write(  # type: ignore[attr-defined]
                {"schema": SCHEMA_VERSION, **record}
            )
        self.cooldowns = cooldowns or CooldownTracker()
        self.default_output_tokens = default_output_tokens
        self.fallback_to_lower_tiers = fallback_to_lower_tiers
        self.budgets = budgets
        self.self_escalation = self_escalation
        self.cascade = cascade
        self.max_escalations = max_escalations
        self.escalation = _live_escalation(escalation)
        self.shadow = _shadow_evaluator(shadow, registry, decision_log)
        self.deployments = deployments or DeploymentHealth()
        self.prefer = prefer
        self.warm_caches = WarmCaches()
        self.clock = clock
        """The monotonic clock of cooldowns, deployment health and warm caches (seconds)."""

    @classmethod
    def from_config(cls, config: GearshiftConfig | str | Path | None = None) -> Router:
        """A router built from a `GearshiftConfig` or a gearshift.toml.

        `None` looks for `$GEARSHIFT_CONFIG`, then `./gearshift.toml`, then uses the built-in registry
        of OpenAI and Anthropic models. Building does no network I/O and reads no key yet.
        """
        from ..config._config import GearshiftConfig, load_config

        if not isinstance(config, GearshiftConfig):
            config = load_config(config)
        try:
            return cls._from_loaded(config)
        except ConfigError as exc:  # a policy's table, validated as the policy is built
            raise config.located(exc) from None

    @classmethod
    def check_config(cls, config: GearshiftConfig | str | Path | None = None) -> GearshiftConfig:
        """The config `from_config` would build from, loaded and checked as it would check it, with
        nothing opened or created: every `[routing]` table is validated, and the folders of the decision
        log and of a SQLite budget store must exist. Raises `ConfigError` with the file, line and key.

        For a caller that builds its router later (the MCP server builds it when it starts serving), so
        that a bad config fails at once rather than once it is running.
        """
        from ..budgets._open import check_store_folder
        from ..config._config import GearshiftConfig, load_config
        from ..config._data_dir import check_folder
        from ._configured import configured_parts

        if not isinstance(config, GearshiftConfig):
            config = load_config(config)
        configured_parts(config)
        try:
            if config.log.path is not None:
                check_folder(config.log.path, what="the decision log", key="log.path", source=config.source)
            if config.budgets is not None:
                check_store_folder(config.budgets.store, source=config.source)
        except ConfigError as exc:
            raise config.located(exc) from None
        return config

    @classmethod
    def _from_loaded(cls, config: GearshiftConfig) -> Router:
        from ..providers._factory import build_providers
        from ._configured import configured_parts
        from ._decision_log import open_decision_log

        parts = configured_parts(config)
        routing = config.routing
        log = config.log
        ledger = None
        if config.budgets is not None:
            from ..budgets import BudgetLedger

            ledger = BudgetLedger.from_config(config.budgets, source=config.source)
        return cls(
            parts.registry,
            policy=parts.policy,
            providers=build_providers(config),
            decision_log=(
                open_decision_log(
                    log.path,
                    include_prompts=log.include_prompts,
                    source=config.source,
                    max_age_days=log.max_age_days,
                )
                if log.path
                else None
            ),
            cooldowns=CooldownTracker(routing.cooldown_seconds, routing.max_cooldown_seconds),
            default_output_tokens=routing.default_output_tokens,
            fallback_to_lower_tiers=routing.fallback_to_lower_tiers,
            budgets=ledger,
            cascade=parts.cascade,
            self_escalation=routing.self_escalation,
            max_escalations=routing.max_escalations,
            escalation=parts.escalation,
            shadow=parts.shadow,
            deployments=DeploymentHealth(
                failures=routing.breaker_failures,
                open_seconds=routing.breaker_open_seconds,
                max_open_seconds=max(routing.breaker_open_seconds, routing.max_cooldown_seconds),
            ),
            prefer=routing.prefer,
        )

    def __repr__(self) -> str:
        return (
            f"Router(models={list(self.registry.ids)}, policy={self.policy.name!r}, "
            f"providers={sorted(self.providers)})"
        )

    # -- deciding -------------------------------------------------------------------------------

    def decide(self, request: RequestLike, context: StepContext | None = None) -> Decision:
        """The decision for a request, without calling any model (and without a log record).

        Pure: it does not read the budget ledger, nor remember a learned hand-over for the run.
        `adecide` also fits the choice to the budget.
        """
        return decide_step(self, as_request(request), context or StepContext())[1]

    async def adecide(
        self,
        request: RequestLike,
        context: StepContext | None = None,
        *,
        remember: bool = False,
        classify: bool = False,
    ) -> Decision:
        """The decision a call would get now, budget included, without calling any model.

        `remember=True` is for callers that call the chosen model themselves (the MCP `route` tool):
        the decision counts as the step's, so a learned hand-over holds the run's later steps.
        `classify=True` lets a policy that asks a model before deciding (the LLM classifier) ask it;
        that call is charged to the step's budget and recorded like any other.
        """
        chat = as_request(request)
        step, _, allowance = await aprepare_step(self, chat, context or StepContext(), prepare=classify)
        return decide_step(self, chat, step, allowance=allowance, remember=remember)[1]

    def spend_keys(self, context: StepContext) -> tuple[str, ...]:
        """The ledger keys a call with `context` is charged to: its `spend_keys`, led by
        `agent:<default_agent>` (the ledger's) when it names no agent; none without a ledger."""
        ledger = self.budgets
        return () if ledger is None else context.charged_keys(ledger.default_agent)

    # -- calling --------------------------------------------------------------------------------

    async def acomplete(
        self,
        request: RequestLike,
        context: StepContext | None = None,
        *,
        self_escalation: bool | None = None,
    ) -> RoutedResponse:
        """Route the request and return the first answer that succeeds along the chain.

        With self-escalation on (the router's `self_escalation`, or this call's override) a model below
        the top tier may hand the step to a stronger one; with a `cascade`, a cheaper model's answer
        that fails its quality gate is escalated. Either way the caller gets one answer, and
        `RoutedResponse.escalations` says what happened. A hand-over whose stronger models all fail,
        or that the budget refuses, keeps the answer it would have replaced (the escalation's
        `failed` and the decision's last reason say so; see `gearshift.routing._review`).

        Raises `ProviderError` at once for a request the provider refuses as malformed,
        `AllModelsFailed` when every model of the chain failed, and `BudgetExceeded` when a hard
        budget limit refuses the call (nothing is charged for a refused call).
        """
        step = context or StepContext()
        trace = CallTrace(self, step)
        with trace.current():
            try:
                if getattr(self.policy, "speculative", False):
                    from ._speculative import complete_speculatively

                    result = await complete_speculatively(
                        self, as_request(request), step, self_escalation, trace
                    )
                else:
                    escalation = ReviewLoop(self, escalates(self, self_escalation))
                    run = trace.run = await aplan_call(
                        self, as_request(request), step, escalate=escalation.offer
                    )
                    result = await escalation.complete(run)
            except BaseException as exc:
                trace.fail(exc)
                raise
        trace.finish(result)
        return result

    def complete(
        self,
        request: RequestLike,
        context: StepContext | None = None,
        *,
        self_escalation: bool | None = None,
    ) -> RoutedResponse:
        """`acomplete` for synchronous callers."""
        return run_sync(self.acomplete(request, context, self_escalation=self_escalation))

    def astream(
        self,
        request: RequestLike,
        context: StepContext | None = None,
        *,
        self_escalation: bool | None = None,
    ) -> RoutedStream:
        """Route the request and stream the answer: text and tool-call deltas, then one `StreamDone`.

        Without a budget ledger the decision is made at once (`RoutedStream.decision`); with one, or
        with a policy that asks a model first (the classifier), it is made when iteration starts. A
        model that fails before its first delta is replaced by the next one of the chain; a break after
        the first delta raises `ProviderError(kind="stream")`, since the caller has already seen part of
        an answer. When escalation or a cascade may replace a lower-tier model's answer, that model's
        events are held back until its answer is accepted, so the caller never sees an answer that was
        replaced (and a break of such a stream falls back along the chain: no one saw any of it).
        With a speculative classifier the cheapest model's stream starts with the
        classification and is kept or cancelled on its verdict (`gearshift.routing._speculative`).
        """
        chat = as_request(request)
        step = context or StepContext()
        escalation = ReviewLoop(self, escalates(self, self_escalation))
        trace = CallTrace(self, step)
        if getattr(self.policy, "speculative", False):
            from ._speculative import stream_speculatively

            speculating = uuid.uuid4().hex
            events = stream_speculatively(self, chat, step, self_escalation, speculating, trace)
            return RoutedStream(None, speculating, trace.stream(events))
        # A policy that asks a model first (the classifier) is awaited, as a ledger is, once iteration starts.
        if self.budgets is None and getattr(self.policy, "aprepare", None) is None:
            try:
                run = trace.run = plan_call(self, chat, step, escalate=escalation.offer)
            except BaseException as exc:
                trace.fail(exc)
                raise
            return RoutedStream(run.decision, run.request_id, trace.stream(escalation.stream(run)))

        request_id = uuid.uuid4().hex  # known before the plan, so a proxy can name it in its headers

        async def planned() -> AsyncGenerator[StreamEvent | RoutedResponse | Decision, None]:
            first = trace.run = await aplan_call(
                self, chat, step, escalate=escalation.offer, request_id=request_id
            )
            yield first.decision
            async with aclosing(escalation.stream(first)) as events:
                async for item in events:
                    yield item

        return RoutedStream(None, request_id, trace.stream(planned()))

    def stream(
        self,
        request: RequestLike,
        context: StepContext | None = None,
        *,
        self_escalation: bool | None = None,
    ) -> SyncRoutedStream:
        """`astream` for synchronous callers."""
        return SyncRoutedStream(self.astream(request, context, self_escalation=self_escalation))

    async def abatch(
        self,
        requests: Iterable[BatchItem | RequestLike],
        *,
        concurrency: int = 8,
        cascade: bool = False,
        gate: QualityGate | None = None,
        on_result: Callable[[BatchResult], None] | None = None,
    ) -> list[BatchResult]:
        """Answer a batch of requests, at most `concurrency` at a time, waiting out rate limits.

        With `cascade`, the bottom tier answers the whole batch, `gate` (default: the router's cascade
        gate, else the heuristic gate) checks every answer, and only the rejected ones go to the top
        tier; otherwise each request is routed as `acomplete` would. Returns one `BatchResult` per
        finished stage (a rejected cheap answer, then its strong one), also handed to `on_result` as
        each finishes. A `BatchItem` names its id (a bare request's is its index); ids must differ.
        See `gearshift.routing._batch` for resuming an interrupted batch.
        """
        from ._batch import run_batch

        return await run_batch(
            self, requests, concurrency=concurrency, cascade=cascade, gate=gate, on_result=on_result
        )

    def batch(
        self,
        requests: Iterable[BatchItem | RequestLike],
        *,
        concurrency: int = 8,
        cascade: bool = False,
        gate: QualityGate | None = None,
        on_result: Callable[[BatchResult], None] | None = None,
    ) -> list[BatchResult]:
        """`abatch` for synchronous callers."""
        return run_sync(
            self.abatch(requests, concurrency=concurrency, cascade=cascade, gate=gate, on_result=on_result)
        )

    # -- feedback -------------------------------------------------------------------------------

    def feedback(
        self, request_id: str, score: float, *, source: str = "user", comment: str | None = None
    ) -> None:
        """Record a score in [0, 1] for the answer of a routed call (`RoutedResponse.request_id`).

        `source` says who scored (`user`, an evaluator's name). The score goes to the decision log
        as a `feedback` record (a `ConfigError` without a log). An id the log holds no call of is
        refused (`InvalidRequestError`): one this router issued is known without I/O; an older one
        (from before a restart, or another process sharing the log) is looked up in the log, a
        bounded read (see `DecisionLog`).
        """
        from ._feedback import record_feedback

        record_feedback(self.decision_log, request_id, score, source=source, comment=comment)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Wait for running shadow evaluations (see `ShadowEvaluator.wait`), close the providers' SDK
        clients that the sync API opened (they live on the sync bridge's loop) and the budget ledger
        (its store's file or connections), then flush and close the decision log. A closed router
        opens new clients if it is called again; its ledger cannot be used again."""
        self._close(ledger=True)

    async def aclose(self) -> None:
        """Wait for running shadow evaluations, then close the providers' SDK clients of the running
        event loop, the budget ledger, and what `close` closes."""
        # Shadows first: one still on the wire needs its provider's client, and one not yet started
        # would open a new client that nothing closes.
        if self.shadow is not None:
            await self.shadow.drain()
        await self._close_providers()
        if self.budgets is not None:
            await self.budgets.aclose()
        self._close(ledger=False)  # closed just now, on this loop

    def _close(self, *, ledger: bool) -> None:
        if self.shadow is not None:
            self.shadow.wait()
        run_on_bridge_if_started(self._close_providers)
        if ledger and self.budgets is not None:
            # A store closes its connections of every loop from any loop: the bridge's will do.
            run_on_bridge(self.budgets.aclose)
        if self.decision_log is not None:
            self.decision_log.close()

    async def _close_providers(self) -> None:
        """Close each provider's clients of the running event loop."""
        for provider in self.providers.values():
            aclose = getattr(provider, "aclose", None)  # optional: not every provider holds a client
            if aclose is not None:
                await aclose()

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


def _shadow_evaluator(
    shadow: ShadowConfig | ShadowEvaluator | None, registry: ModelRegistry, log: DecisionLog | None
) -> ShadowEvaluator | None:
    if shadow is None:
        return None
    from ._shadow import ShadowConfig, ShadowEvaluator

    if log is None:
        raise ConfigError(
            "shadow evaluation writes to the decision log: set [log] path", key="routing.shadow"
        )
    return ShadowEvaluator(shadow, registry=registry) if isinstance(shadow, ShadowConfig) else shadow


def _live_escalation(escalation: EscalationModel | LiveEscalation | None) -> LiveEscalation | None:
    if escalation is None:
        return None
    from ..escalation import EscalationModel, LiveEscalation

    if isinstance(escalation, EscalationModel):
        return LiveEscalation(escalation)
    if not isinstance(escalation, LiveEscalation):
        raise TypeError(f"escalation must be an EscalationModel or a LiveEscalation, got {escalation!r}")
    return escalation
