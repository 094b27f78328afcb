"""Shadow evaluation: a sampled share of live calls is also answered by another model, in the
background, and a judge scores both answers; the pair becomes a `shadow` record (an outcome row).

```toml
[routing.shadow]
share = 0.05          # of the eligible calls, in either direction (forced calls never)
reference = "top"     # the cheapest model of the top eligible tier, or a registry model id
downward = true       # calls answered at or above the reference's tier get a cheaper shadow too
judge = "heuristic"   # or "llm-judge" (with judge_model), "learned-judge" (with learned_judge_path),
                      # or "recorded" (a replayed answer's recorded score: offline replays)
agent = "shadow"      # shadow calls are charged to agent:shadow (give it a budget limit to cap it)
max_usd = 5.0         # and stop once this much was spent on shadows by this process (judges included)
sampling = "uniform"  # or "uncertain": calls the policy nearly sent to another tier are shadowed more
```

Routing errors are silent unless some traffic is answered by both models and compared: that is what
this does, both ways. A call answered below the reference's tier may have been under-routed: its
shadow asks the reference (`direction = "up"`). A call answered at or above it may have been
over-routed, money an upward shadow never sees: with `downward = true` (the default) its shadow asks
the cheapest model of the lowest eligible tier (`direction = "down"`), at that model's price. Both
kinds share one sample, so the shadow log is a fair sample of all traffic rather than of the calls
the live policy found easy (`train --from-log` learns from it); `downward = false` shadows only
upward. A call with no model on the other side of the reference's tier gets none.

With three or more eligible tiers an upward shadow still asks the reference (what the report's
quality kept compares with), and a downward one asks the cheapest model of a tier drawn at random among
those below the call's. Otherwise a middle tier's model would only ever answer the calls the live
policy sent it, and a router trained on the log could only guess how it does on the rest (trained on a
slice it did well on, a router guessed it good everywhere and sent it the hardest calls). With two
tiers there is one choice, as before.

The caller's answer is never delayed or changed: the shadow starts once the caller has its answer,
as a background task; any failure (a refused budget, a provider error, a judge that cannot grade)
skips that shadow and is logged at DEBUG. `max_usd` counts everything shadowing spent: the shadow
calls, failed ones the provider was paid for included (a timed-out call is charged its input), and
every call of an LLM judge (`_spend_tally`); once it is reached no shadow starts and a running one
makes no further call, so it is passed by at most the calls in flight when it was reached. Shadow
calls go through the router like any call, as `agent_id = agent` and `run_id = "shadow:<request id>"`,
so the ledger and the report see their cost.
Records carry the prompt, so shadow evaluation needs `log.include_prompts = true`; the rows train
routers (`gearshift train --from-log`, `gearshift export-outcomes`).

`sampling = "uncertain"` spends the same share where a label teaches most: a call's chance of a
shadow grows as exp(-margin / uncertainty_width), margin being how far the policy's difficulty was
from its nearest cut point, on either side (`Decision.scores["margin"]`, which `SignalScorer` and
the default policy give), and it is scaled by the running mean of that weight over the eligible
calls so far, so that about `share` of them are still shadowed (and never more than `share` of them
plus 20, should traffic drift toward the cut point faster than the mean follows). Calls whose
decision has no margin (other policies) are sampled at `share`. Each shadow record keeps the chance
it was sampled with (`sample_share`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._context import CallerHints, StepContext
from .._errors import ConfigError, GearshiftError
from ..config._config_errors import problem_wording
from ._records import SCHEMA_VERSION
from ._spend_tally import counting
from ._tracing import start_own_trace

if TYPE_CHECKING:
    from .._messages import ChatRequest, ChatResponse
    from .._models import ModelRegistry
    from ..cascades._gate import QualityGate
    from ._routed import RoutedResponse
    from ._router_host import RouterHost

__all__ = ["ShadowConfig", "ShadowEvaluator"]

logger = logging.getLogger("gearshift.shadow")

Direction: TypeAlias = Literal["up", "down"]
"""Which way a shadow looks: "up" to the reference, "down" to the cheapest model of the lowest tier."""

_KEY = "routing.shadow"
_SAMPLING_SLACK = 20
"""With uncertainty sampling, shadows may run ahead of `share` of the eligible calls by this many.

Not fewer: the count's chance fluctuations reach it (about 15 over 5,000 eligible calls at 5%), and a
cap they hit often holds the share below what was asked."""


class ShadowConfig(BaseModel):
    """Settings of shadow evaluation (the `[routing.shadow]` table of gearshift.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    share: float = Field(default=0.05, gt=0, le=1, description="Share of eligible calls that get a shadow.")
    reference: str = Field(
        default="top",
        min_length=1,
        description='"top" (the cheapest model of the top eligible tier) or a registry model id.',
    )
    downward: bool = Field(
        default=True,
        description="Calls answered at or above the reference's tier are shadowed too, by the cheapest "
        "model of an eligible tier below (drawn at random; finds over-routing; false: only calls below "
        "it, upward).",
    )
    judge: Literal["heuristic", "llm-judge", "learned-judge", "recorded"] = Field(
        default="heuristic", description="What scores both answers."
    )
    judge_model: str | None = Field(default=None, description="The llm-judge's model (a registry id).")
    learned_judge_path: Path | None = Field(default=None, description="The learned judge's saved file.")
    agent: str = Field(
        default="shadow", min_length=1, description="The agent id shadow calls are charged to."
    )
    max_usd: float | None = Field(
        default=None, gt=0, description="Stop shadowing once this process spent this much on shadows."
    )
    max_in_flight: int = Field(
        default=8, ge=1, description="Shadows running at once at most; more are skipped."
    )
    seed: int | None = Field(default=None, description="Seed of the sampling (None: random).")
    sampling: Literal["uniform", "uncertain"] = Field(
        default="uniform",
        description='"uniform": every eligible call alike; "uncertain": more often where the policy\'s '
        "decision was close to another tier (same share overall).",
    )
    uncertainty_width: float = Field(
        default=0.1,
        gt=0,
        description='With sampling = "uncertain": the margin (on the policy\'s 0-1 difficulty scale) '
        "at which a call's weight falls to 1/e of a call on the cut point.",
    )

    @model_validator(mode="after")
    def _check_judge(self) -> ShadowConfig:
        if self.judge == "llm-judge" and self.judge_model is None:
            raise ValueError('judge_model: the llm-judge needs judge_model = "<a registry model id>"')
        if self.judge == "learned-judge" and self.learned_judge_path is None:
            raise ValueError("learned_judge_path: the learned-judge needs the path of a saved judge")
        return self

    @classmethod
    def from_config(cls, data: Any, *, source: str = "<python>") -> ShadowConfig:
        """Validate user-written settings; a `ConfigError` names the offending key and why."""
        if isinstance(data, ShadowConfig):
            return data
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
            message = problem_wording(err)
            if not loc and ": " in message:
                field, message = message.split(": ", 1)
                loc = [field]
            if err["type"] == "extra_forbidden":
                message = f"unknown setting; [{_KEY}] accepts: {', '.join(cls.model_fields)}"
            raise ConfigError(message, source=source, key=".".join([_KEY, *loc])) from None


class ShadowEvaluator:
    """Runs the shadows of one router: sampling, the shadow call, the judge, the `shadow` record."""

    def __init__(
        self,
        config: ShadowConfig,
        *,
        registry: ModelRegistry,
        source: str = "<python>",
        base_dir: Path | None = None,
    ) -> None:
        self.config = config
        if config.reference != "top" and config.reference not in registry:
            raise ConfigError(
                f"unknown model id '{config.reference}'; the registry has: {', '.join(registry.ids)}",
                source=source,
                key=f"{_KEY}.reference",
            )
        self._gate = _build_judge(config, registry, source, base_dir)
        self._random = random.Random(config.seed)
        self._tier_random = random.Random(None if config.seed is None else config.seed + 1)
        self._weights = _RunningMean()
        self._uncertain_sampled = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.spent_usd = 0.0
        """What shadow calls (and their judges) cost so far in this process, failed calls included."""
        self.recorded = 0
        """How many shadow records were written."""
        self.skipped = 0
        """How many sampled shadows were skipped (cap, in-flight limit, refusal, failure)."""

    def __repr__(self) -> str:
        c = self.config
        return (
            f"ShadowEvaluator(share={c.share}, reference={c.reference!r}, downward={c.downward}, "
            f"judge={c.judge!r})"
        )

    def consider(
        self, router: RouterHost, request: ChatRequest, context: StepContext, result: RoutedResponse
    ) -> None:
        """Maybe start a shadow of a call that was just answered (never blocks, never raises)."""
        config = self.config
        # A forced model is not a routing decision (the classifier's own call is one too): with
        # `reference = "top"` its route holds only that model, and a named reference must agree.
        if context.agent_id == config.agent or context.hints.force_model is not None:
            return
        margin = result.decision.scores.get("margin")
        if config.sampling == "uncertain" and margin is not None:
            # Eligibility first: the weight's running mean is over the calls a shadow could follow.
            counterpart = self._counterpart(router, request, context, result)
            if counterpart is None:
                return
            weight = math.exp(-max(margin, 0.0) / config.uncertainty_width)
            share = min(1.0, config.share * weight / self._weights.add(weight))
            # The running mean lags when traffic drifts toward the cut point: never run ahead of
            # `share` of the eligible calls by more than a few shadows.
            if self._uncertain_sampled + 1 > config.share * self._weights.count + _SAMPLING_SLACK:
                return
            if self._random.random() >= share:
                return
            self._uncertain_sampled += 1
        else:
            share = config.share
            if self._random.random() >= share:
                return
            counterpart = self._counterpart(router, request, context, result)
            if counterpart is None:
                return
        if len(self._tasks) >= config.max_in_flight or self._capped():
            self.skipped += 1
            return
        task = asyncio.get_running_loop().create_task(
            self._shadow(router, request, context, result, counterpart, share)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the shadows still running on this event loop (`Router.aclose` does, before it
        closes the providers' clients and the log)."""
        loop = asyncio.get_running_loop()
        while pending := [t for t in self._tasks if t.get_loop() is loop]:
            await asyncio.gather(*pending, return_exceptions=True)

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the running shadows from synchronous code (`Router.close`): those whose event
        loop runs in another thread, like the sync bridge's. Shadows on the calling thread's own
        running loop cannot be waited for here; use `aclose`."""
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop in {task.get_loop() for task in self._tasks}:
            if loop is not here and loop.is_running():
                asyncio.run_coroutine_threadsafe(self.drain(), loop).result(timeout)

    def _counterpart(
        self, router: RouterHost, request: ChatRequest, context: StepContext, result: RoutedResponse
    ) -> tuple[str, Direction] | None:
        """The model a shadow of this call asks, and which way it looks: for a call answered below the
        reference's tier, the reference; for one answered at or above it (with `downward`), the
        cheapest model of an eligible tier below it, drawn at random when there are several; None when
        the call gets no shadow."""
        from ._decide import route_input

        route = route_input(
            router.registry, request, context, default_output_tokens=router.default_output_tokens
        )
        reference = self.config.reference
        if reference == "top":
            if not route.candidates:
                return None
            reference = route.cheapest_in_tier(max(m.tier for m in route.candidates)).id
        tier = router.registry[result.model_id].tier
        if tier < router.registry[reference].tier:
            return reference, "up"
        below = sorted({m.tier for m in route.candidates if m.tier < tier})
        if not self.config.downward or not below:
            return None
        return route.cheapest_in_tier(self._pick_tier(below)).id, "down"

    def _pick_tier(self, tiers: list[int]) -> int:
        """One of `tiers`, at random (its own generator, so the sampling draws stay as they were)."""
        return tiers[0] if len(tiers) == 1 else self._tier_random.choice(tiers)

    async def _shadow(
        self,
        router: RouterHost,
        request: ChatRequest,
        context: StepContext,
        result: RoutedResponse,
        counterpart: tuple[str, Direction],
        share: float,
    ) -> None:
        """One shadow, in the background: whatever goes wrong skips it and never reaches the caller."""
        start_own_trace()  # its spans are not the caller's: its run_id names the call it shadows
        try:
            with counting(self._spend):
                await self._run(router, request, context, result, counterpart, share)
        except Exception as exc:  # a background task: nothing may escape it
            self.skipped += 1
            logger.debug("shadow of %s skipped: %r", result.request_id, exc)

    async def _run(
        self,
        router: RouterHost,
        request: ChatRequest,
        context: StepContext,
        result: RoutedResponse,
        counterpart: tuple[str, Direction],
        share: float,
    ) -> None:
        config = self.config
        model_id, direction = counterpart
        shadow_context = StepContext(
            agent_id=config.agent,
            run_id=f"shadow:{result.request_id}",
            metadata=context.metadata,
            hints=CallerHints(force_model=model_id),
        )
        self._check_cap()  # other shadows may have spent it since this one was sampled
        answer = await router.acomplete(request, shadow_context, self_escalation=False)
        routed_score = await self._score(router, request, result, shadow_context)
        shadow_score = await self._score(router, request, answer, shadow_context)
        log = router.decision_log
        if log is None:
            return
        log.write(
            {
                "schema": SCHEMA_VERSION,
                "kind": "shadow",
                "ts": time.time(),
                "request_id": result.request_id,
                "agent_id": context.agent_id,
                "run_id": context.run_id,
                "task": str(context.metadata.get("task") or result.response.metadata.get("task") or "live"),
                "prompt": [{"role": m.role, "content": m.text} for m in request.messages]
                if log.include_prompts
                else None,
                "judge": config.judge,
                "direction": direction,
                "sample_share": round(share, 6),
                "shadow_request_id": answer.request_id,
                "outcomes": {  # the caller's model first, then the shadow's
                    result.model_id: _outcome(result, routed_score),
                    answer.model_id: _outcome(answer, shadow_score),
                },
            }
        )
        self.recorded += 1

    async def _score(
        self, router: RouterHost, request: ChatRequest, answer: RoutedResponse, context: StepContext
    ) -> float:
        """The judge's score of one answer in [0, 1] (what judging it cost is counted as it is spent)."""
        if self._gate is None:  # "recorded": the replayed answer carries its recorded score
            score = answer.response.metadata.get("score")
            if not isinstance(score, (int, float)):
                raise _NoScore(f"the answer of {answer.model_id} carries no recorded score")
            return float(score)
        from ..cascades._gate import AnswerCheck
        from ..cascades._judge import LLMJudgeGate

        async def ask(model_id: str, judge_request: ChatRequest) -> ChatResponse:
            self._check_cap()  # not a judge failure the gate may grade around: the shadow stops
            judged = await router.acomplete(judge_request, _forced(context, model_id), self_escalation=False)
            return judged.response

        check = AnswerCheck(request, answer.response, answer.decision, context, ask)
        if isinstance(self._gate, LLMJudgeGate):
            # Its failed grade raises (`NoGrade`): the shadow is skipped, not recorded with a made-up 0.
            grade, _ = await self._gate.grade(check)
            return grade / 10.0
        verdict = await self._gate.check(check)
        score = verdict.confidence if verdict.confidence is not None else float(verdict.accept)
        return min(max(score, 0.0), 1.0)

    def _spend(self, usd: float) -> None:
        """A call made for a shadow (the shadow call, a judge's call, failed ones too) cost `usd`."""
        self.spent_usd += usd

    def _capped(self) -> bool:
        """Whether shadowing has spent its `max_usd`."""
        cap = self.config.max_usd
        return cap is not None and self.spent_usd >= cap

    def _check_cap(self) -> None:
        """Raise `_CapReached` once shadowing has spent its `max_usd`: a running shadow stops."""
        if self._capped():
            raise _CapReached(f"shadowing spent its max_usd (${self.config.max_usd:g})")


class _RunningMean:
    """The mean of the values added so far."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0

    def add(self, value: float) -> float:
        """Add `value`; returns the mean including it."""
        self.count += 1
        self.total += value
        return self.total / self.count


class _NoScore(GearshiftError):
    """A shadow answer the judge could not score."""


class _CapReached(GearshiftError):
    """Shadowing spent its `max_usd` while a shadow was running: it makes no further call."""


def _forced(context: StepContext, model_id: str) -> StepContext:
    return StepContext(
        agent_id=context.agent_id,
        run_id=context.run_id,
        metadata=context.metadata,
        hints=CallerHints(force_model=model_id),
    )


def _outcome(answer: RoutedResponse, score: float) -> dict[str, Any]:
    usage = answer.usage
    return {
        "score": score,
        "cost_usd": answer.cost_usd,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
    }


def _build_judge(
    config: ShadowConfig, registry: ModelRegistry, source: str, base_dir: Path | None
) -> QualityGate | None:
    if config.judge == "recorded":
        return None
    from ..cascades._settings import CascadeConfig, build_cascade

    settings: dict[str, Any] = {"gates": (config.judge,)}
    if config.judge_model is not None:
        settings["judge_model"] = config.judge_model
    if config.learned_judge_path is not None:
        settings["learned_judge_path"] = config.learned_judge_path
    cascade = build_cascade(
        CascadeConfig.from_config(settings, source=source, key=_KEY),
        registry=registry,
        source=source,
        base_dir=base_dir,
    )
    # The LLM judge is asked for its grade itself, so that a failed grade skips the shadow rather
    # than scoring it by `judge_on_failure`.
    return cascade.gates[0] if config.judge == "llm-judge" else cascade
