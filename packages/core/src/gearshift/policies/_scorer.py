"""`SignalScorer`: the zero-training policy.

It adds up transparent weighted components of the signals (code, math and reasoning strength, prompt
length, JSON output, the task and the step type) into a difficulty in [0, 1], cuts that range into as
many bands as there are eligible tiers, and takes the cheapest model of the band's tier. An agent that
is stuck (a streak of tool errors, the same tool call again and again) goes at least one tier above
what the difficulty alone would give. Every weight lives in `ScorerConfig`, so gearshift.toml can tune it.

Math and reasoning weigh nothing by default. On recorded outcomes of a weak and a strong model
(the bundled GSM8K and MMLU tables) their strengths correlate negatively with "the strong model wins"
(math -0.07 on both, reasoning -0.03 on MMLU): they detect a topic or a format (word-problem wording,
"how many", answer choices, "which of the following is NOT") that easy and hard prompts share, and they
saturate on short prompts while the length of a problem is what grows with its difficulty. With them
the scorer routed worse than a coin (APGR 0.48 on GSM8K, 0.45 on MMLU); without them 0.51 and 0.52
(`uv run python tests/benchmarks/default_policy.py`). The signals stay: rules and the learned router
read them, and a config may weigh them again. Code, length, JSON and the step signals are kept.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._context import StepType
from .._decision import Decision
from .._errors import ConfigError
from .._models import ModelSpec
from ..config._config_errors import problem_wording
from ..signals._signals import TASKS, Signals
from ._protocol import RouteInput, fallback_chain, make_decision

__all__ = ["ScorerConfig", "SignalScorer"]

# A strength below this is not worth naming in the reasons.
_NOTABLE = 0.25
# Looked up once: reading an enum member off its class costs an attribute lookup through the metaclass.
_OBSERVE = StepType.OBSERVE
# How a task reads in the reasons ("tool use task"); formatted once rather than per decision.
_TASK_NOTES = {task: f"{task.replace('_', ' ')} task" for task in TASKS}
# Distinct candidate sets seen by one scorer stay few (the registry and the caller's hints decide them);
# past this many, the cache starts over rather than grow.
_MAX_SLATES = 64


def _default_step_bias() -> dict[StepType, float]:
    return {
        StepType.PLAN: 0.2,
        StepType.REFLECT: 0.15,
        StepType.OBSERVE: -0.25,
        StepType.SUMMARIZE: -0.15,
    }


class ScorerConfig(BaseModel):
    """Weights and thresholds of `SignalScorer` (the `[routing.scorer]` table of gearshift.toml).

    Difficulty is the sum of the components, clamped to [0, 1]: `code_weight * code` and the same for
    math and reasoning, the length component, `json_weight` when JSON output is asked for, the task's
    bias and the step type's bias.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code_weight: float = Field(default=0.6, ge=0, le=1, description="Weight of the code strength.")
    math_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Weight of the math strength. 0 by default: math markers say a prompt is about "
        "math, not that a stronger model would do better on it (see the module docstring).",
    )
    reasoning_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Weight of the reasoning-marker strength. 0 by default, for the same reason as math.",
    )
    length_weight: float = Field(
        default=0.2, ge=0, le=1, description="Component of a prompt at or above `length_ceiling_tokens`."
    )
    length_floor_tokens: int = Field(
        default=200, gt=0, description="Prompts up to this many tokens add nothing for their length."
    )
    length_ceiling_tokens: int = Field(
        default=8_000,
        gt=0,
        description="Prompts this long add the whole `length_weight`; between floor and ceiling the "
        "component grows with the logarithm of the length.",
    )
    json_weight: float = Field(
        default=0.05, ge=0, le=1, description="Added when the request asks for JSON output."
    )
    step_bias: dict[StepType, float] = Field(
        default_factory=_default_step_bias,
        description="Added per step type: planning and reflecting lean up, observing and summarizing "
        "lean down. Step types not listed add nothing.",
    )
    task_bias: dict[str, float] = Field(
        default_factory=dict, description="Added per task label (see `gearshift.TASKS`)."
    )
    thresholds: tuple[float, ...] | None = Field(
        default=None,
        description="Difficulty cut points between tiers, ascending in (0, 1), one fewer than the tiers "
        "they are written for. With a different number of eligible tiers the cut points are "
        "interpolated along the same curve. Unset: the cut points spread evenly.",
    )
    escalate_after_errors: int = Field(
        default=2, ge=1, description="Consecutive tool errors that move the step up one tier."
    )
    escalate_after_repeats: int = Field(
        default=1,
        ge=1,
        description="Repeats of the same tool call (same name and arguments, back to back) that move "
        "the step up one tier: 1 means the second identical call.",
    )

    @field_validator("step_bias", "task_bias")
    @classmethod
    def _check_bias(cls, value: dict[Any, float]) -> dict[Any, float]:
        for key, bias in value.items():
            if not -1 <= bias <= 1:
                raise ValueError(f"the bias for {str(getattr(key, 'value', key))!r} must be in [-1, 1]")
        return value

    @field_validator("task_bias")
    @classmethod
    def _check_tasks(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown task {unknown[0]!r}; use one of {', '.join(TASKS)}")
        return value

    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        if not all(0 < cut < 1 for cut in value):
            raise ValueError("every threshold must be strictly between 0 and 1")
        if any(a >= b for a, b in pairwise(value)):
            raise ValueError("thresholds must be strictly ascending")
        return value

    @model_validator(mode="after")
    def _check_length_range(self) -> ScorerConfig:
        if self.length_ceiling_tokens <= self.length_floor_tokens:
            raise ValueError("length_ceiling_tokens must be above length_floor_tokens")
        return self

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, source: str = "<python>", key: str = "routing.scorer"
    ) -> ScorerConfig:
        """Validate user-written settings; a `ConfigError` names the offending key and why."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            # pydantic appends "[key]" to the location of a bad dict key; the key itself says enough.
            loc = [part for part in err["loc"] if part != "[key]"]
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
            message = problem_wording(err)
            if err["type"] == "extra_forbidden":
                message = f"unknown setting; the scorer accepts: {', '.join(cls.model_fields)}"
            raise ConfigError(message, source=source, key=f"{key}{path}") from None

    def cut_points(self, tier_count: int) -> tuple[float, ...]:
        """The difficulty cut points between `tier_count` tiers, ascending."""
        return tuple(self._curve(i / tier_count) for i in range(1, tier_count))

    def _curve(self, x: float) -> float:
        # Piecewise linear through (0, 0), the configured cut points at even spacing, and (1, 1): with
        # as many tiers as the thresholds were written for, this returns them exactly.
        if self.thresholds is None:
            return x
        knots = (0.0, *self.thresholds, 1.0)
        position = x * (len(knots) - 1)
        index = min(int(position), len(knots) - 2)
        return knots[index] + (knots[index + 1] - knots[index]) * (position - index)


@dataclass(frozen=True, slots=True)
class _Slate:
    """What a decision needs from one candidates tuple, worked out once per tuple.

    `tiers` are `RouteInput.tiers`; `picks[i]` is the cheapest candidate of `tiers[i]`, with its
    fallback chain and its reason at the same index; `cuts` and `bands` are the difficulty cut points
    between those tiers and how the reasons word them.
    """

    candidates: tuple[ModelSpec, ...]
    tiers: tuple[int, ...]
    cuts: tuple[float, ...]
    bands: str
    picks: tuple[ModelSpec, ...]
    fallbacks: tuple[tuple[str, ...], ...]
    pick_reasons: tuple[str, ...]


class SignalScorer:
    """The zero-training policy: a difficulty score over the signals, cut into tiers.

    Pure and cheap: the same route always gets the same decision.
    """

    name = "scorer"

    def __init__(self, config: ScorerConfig | None = None) -> None:
        self.config = config if config is not None else ScorerConfig()
        config = self.config
        self._length_span = math.log(config.length_ceiling_tokens / config.length_floor_tokens)
        # Keyed by the ids of the candidate specs (hashing the specs themselves is slow), and checked
        # against the candidates on a hit, so that a reused id can never return another set's slate.
        self._slates: dict[tuple[int, ...], _Slate] = {}
        self._last_slate: _Slate | None = None

    def __repr__(self) -> str:
        return f"SignalScorer({self.config!r})"

    def components(self, signals: Signals) -> dict[str, float]:
        """Each weighted component of the difficulty, by name."""
        config = self.config
        tokens = signals.prompt_tokens
        # Prompts up to the floor (most of them) add nothing for their length: no logarithm to take.
        length = 0.0
        if tokens > config.length_floor_tokens:
            length = min(math.log(tokens / config.length_floor_tokens) / self._length_span, 1.0)
        return {
            "code": config.code_weight * signals.code,
            "math": config.math_weight * signals.math,
            "reasoning": config.reasoning_weight * signals.reasoning,
            "length": config.length_weight * length,
            "json": config.json_weight if signals.needs_json else 0.0,
            "task": config.task_bias.get(signals.task, 0.0),
            "step": config.step_bias.get(signals.step_type, 0.0),
        }

    def difficulty(self, signals: Signals) -> float:
        """The difficulty of a request in [0, 1]: its components summed and clamped."""
        return min(max(sum(self.components(signals).values()), 0.0), 1.0)

    def decide(self, route: RouteInput) -> Decision:
        """Pick the cheapest model of the tier the difficulty (and any escalation) calls for."""
        signals = route.signals
        scores, about = self._content(route)
        difficulty = min(max(sum(scores.values()), 0.0), 1.0)
        slate = self._last_slate
        if slate is None or slate.candidates is not route.candidates:
            slate = self._slate(route)
        tiers = slate.tiers
        base = bisect_right(slate.cuts, difficulty)
        escalations = self._escalations(signals)
        chosen = min(base + len(escalations), len(tiers) - 1)

        reasons = [about]
        step_bias = scores["step"]
        if signals.step_type is _OBSERVE and chosen == 0:
            reading = " reading a tool result" if signals.task == "tool_use" else ""
            reasons.append(f"observe step{reading}: cheapest tier is enough")
        elif step_bias:
            lean = "up" if step_bias > 0 else "down"
            reasons.append(f"{signals.step_type.value} step: leaning {lean} ({step_bias:+.2f})")
        reasons.append(f"difficulty {difficulty:.2f} -> tier {tiers[base]}{slate.bands}")
        for index, why in enumerate(escalations):
            if base + index < chosen:
                reasons.append(f"{why}: escalating one tier")
            else:
                reasons.append(f"{why}: already at the top eligible tier ({tiers[-1]})")
        reasons.append(slate.pick_reasons[chosen])
        scores["difficulty"] = difficulty
        scores["escalation"] = float(chosen - base)
        # How close the call came to another tier: shadow sampling by uncertainty reads it.
        scores["margin"] = min((abs(difficulty - cut) for cut in slate.cuts), default=1.0)
        return make_decision(
            route,
            slate.picks[chosen],
            policy=self.name,
            reasons=reasons,
            scores=scores,
            fallbacks=slate.fallbacks[chosen],
        )

    def _content(self, route: RouteInput) -> tuple[dict[str, float], str]:
        """The difficulty components of a route (the step's bias as `step`) and how reasons word them."""
        signals = route.signals
        return self.components(signals), _content_reason(signals)

    def _cut_points(self, tier_count: int) -> tuple[float, ...]:
        """The difficulty cut points between `tier_count` tiers."""
        return self.config.cut_points(tier_count)

    def _escalations(self, signals: Signals) -> list[str]:
        """Why the step must go above the tier its difficulty gives: a tool error streak, a loop."""
        escalations = []
        if signals.consecutive_tool_errors >= self.config.escalate_after_errors:
            escalations.append(f"{signals.consecutive_tool_errors} consecutive tool errors")
        if signals.repeated_tool_calls >= self.config.escalate_after_repeats:
            calls = signals.repeated_tool_calls + 1
            escalations.append(f"repeated identical tool call (loop suspected: {calls} in a row)")
        return escalations

    def _slate(self, route: RouteInput) -> _Slate:
        # The same few candidate sets come back request after request: their tiers, picks, fallback
        # chains and cut points are worked out once instead of on every decision. The last one used is
        # also checked first, by identity (`decide`): when every model fits, eligibility returns the
        # registry's own tuple, so the usual request needs no key at all.
        candidates = route.candidates
        key = tuple(map(id, candidates))
        slate = self._slates.get(key)
        if slate is None or slate.candidates != candidates:
            tiers = route.tiers
            cuts = self._cut_points(len(tiers))
            if len(tiers) == 1:
                bands = " (the only eligible tier)"
            else:
                points = ", ".join(f"{cut:.2f}" for cut in cuts)
                bands = f" of {', '.join(map(str, tiers))} (cut points {points})"
            picks = tuple(route.cheapest_in_tier(tier) for tier in tiers)
            slate = _Slate(
                candidates=candidates,
                tiers=tiers,
                cuts=cuts,
                bands=bands,
                picks=picks,
                fallbacks=tuple(fallback_chain(candidates, pick) for pick in picks),
                pick_reasons=tuple(f"cheapest eligible model of tier {m.tier}: {m.id}" for m in picks),
            )
            if len(self._slates) >= _MAX_SLATES:
                self._slates.clear()
            self._slates[key] = slate
        self._last_slate = slate
        return slate


def _content_reason(signals: Signals) -> str:
    notable = []
    if signals.code >= _NOTABLE:
        notable.append(f"code ({signals.code:.2f})")
    if signals.math >= _NOTABLE:
        notable.append(f"math ({signals.math:.2f})")
    if signals.reasoning >= _NOTABLE:
        notable.append(f"reasoning ({signals.reasoning:.2f})")
    markers = f"{_join(notable)} markers" if notable else "no code, math or reasoning markers"
    tokens = f"{signals.prompt_tokens:,}"
    task = signals.task
    if task == "chat":
        extra = " (tool schemas not counted)" if signals.has_tools else ""
    else:
        note = _TASK_NOTES.get(task) or f"{task.replace('_', ' ')} task"
        extra = f" ({note}, tool schemas not counted)" if signals.has_tools else f" ({note})"
    return f"{markers} in {_article(tokens)} {tokens}-token prompt{extra}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _article(number: str) -> str:
    # Said aloud: "an 8-token", "an 11-token", "an 18,000-token"; but "a 110-token", "a 1,100-token".
    group = number.partition(",")[0]
    return "an" if group[0] == "8" or group in ("11", "18") else "a"
