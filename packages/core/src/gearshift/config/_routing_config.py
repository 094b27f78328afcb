"""`[routing]`: which policy routes, with its settings, and how the router reacts to failures.

The policy's own tables (`rules`, `learned`, `classifier`, `scorer`, `escalation`, `cascade`,
`shadow`) are kept here as written and validated by the part that builds them, which knows its keys
(`Router.from_config`); this schema checks what holds across them (a policy names the table it needs).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from ..signals._signals import TASKS
from ._config_errors import KeyedError, show_value

__all__ = ["RoutingConfig"]


class RoutingConfig(BaseModel):
    """How requests are routed and how the router reacts to failures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: Literal["default", "scorer", "rules", "learned", "classifier", "cheapest"] = Field(
        default="default",
        description="`default`: the learned difficulty estimate shipped with gearshift plus the step "
        "signals; `scorer`: the zero-training scorer over the request's signals; `rules`: the "
        "declarative `rules` below (the default policy decides what no rule matches); `learned`: a "
        "router trained on your outcomes (`learned` below); `classifier`: a small model names the tier "
        "(`classifier` below); `cheapest`: always the cheapest model, for the learned `escalation` "
        "alone to move steps up.",
    )
    upper_share: float = Field(
        default=0.3,  # gearshift.learning.DEFAULT_UPPER_SHARE; not imported: the config loads no policy
        gt=0,
        lt=1,
        description="The default policy: the share of plain requests sent above the cheapest tier "
        "(the hardest-looking ones); step biases and escalations move single steps on top of it.",
    )
    default_output_tokens: int = Field(
        default=512,
        gt=0,
        description="Expected output tokens when a request sets no max_tokens (estimates); under a "
        "budget limit that refuses, also the output cap sent to the model.",
    )
    rules: tuple[dict[str, Any], ...] = Field(
        default=(), description="The rules of the `rules` policy, in order; validated by that policy."
    )
    tasks: dict[str, StrictStr | StrictInt] = Field(
        default_factory=dict,
        description='Task label -> model id (or tier number): `code = "model-a"` routes requests the '
        "signals label `code` there, as rules tried before `rules` and the policy (see `gearshift.TASKS`).",
    )
    scorer: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the scorer policy; validated by that policy."
    )
    cooldown_seconds: float = Field(
        default=30.0,
        ge=0,
        allow_inf_nan=False,
        description="How long a failed model is skipped when the provider gave no retry-after; "
        "doubles with each consecutive failure.",
    )
    max_cooldown_seconds: float = Field(
        default=300.0, ge=0, allow_inf_nan=False, description="The longest cooldown."
    )
    fallback_to_lower_tiers: bool = Field(
        default=False,
        description="When every model at or above the chosen tier failed, also try weaker ones.",
    )
    self_escalation: bool = Field(
        default=False,
        description="Offer models below the top tier an `escalate` tool that hands the step to a "
        "stronger model; the caller sees one answer.",
    )
    max_escalations: int = Field(
        default=2, ge=0, description="The most hand-overs to stronger models in one call."
    )
    prefer: Literal["cost", "latency"] = Field(
        default="cost",
        description="Among models of the tier the policy chose: `cost` takes the cheapest, `latency` "
        "the one that has answered fastest so far (each model of the tier not measured yet, and "
        "never failed, takes a call or two first, to be measured).",
    )
    breaker_failures: int = Field(
        default=3,
        ge=1,
        description="Failures in a row after which a deployment of a model with several is tripped "
        "(skipped, then probed before it gets traffic again).",
    )
    breaker_open_seconds: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="How long a tripped deployment is skipped before its probe; doubles with each "
        "failed probe, up to max_cooldown_seconds.",
    )
    learned: dict[str, Any] | None = Field(
        default=None,
        description="The learned policy: its artifact `path` and operating point; validated by "
        "`gearshift.learning.LearnedConfig`.",
    )
    escalation: dict[str, Any] | None = Field(
        default=None,
        description="The learned escalation applied on every step of a run: its artifact `path`, "
        "threshold and stickiness; validated by `gearshift.escalation.EscalationConfig`.",
    )
    classifier: dict[str, Any] | None = Field(
        default=None,
        description="The classifier policy: its `model`, prompt, labels, timeout and cache; validated by "
        "`gearshift.policies.ClassifierConfig`.",
    )
    cascade: dict[str, Any] | None = Field(
        default=None,
        description="A cascade: quality gates that check cheaper models' answers and escalate the "
        "ones that fail; validated by `gearshift.cascades.CascadeConfig`.",
    )
    shadow: dict[str, Any] | None = Field(
        default=None,
        description="Shadow evaluation: a sampled share of calls also answered in the background by the "
        "reference model (calls below its tier) or the cheapest one (calls at or above it) and judged; "
        "validated by `gearshift.ShadowConfig`.",
    )

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        for task in value:
            if task not in TASKS:
                raise KeyedError((task,), f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> RoutingConfig:
        if self.policy == "rules" and not self.rules and not self.tasks:
            raise KeyedError(("rules",), "policy = 'rules' needs at least one [[routing.rules]] table")
        if self.policy == "learned" and self.learned is None:
            raise KeyedError(
                ("learned",),
                "policy = 'learned' needs a [routing.learned] table with the `path` of a trained router "
                "(gearshift train --data OUTCOMES.jsonl --out ROUTER.json)",
            )
        if self.policy == "classifier" and self.classifier is None:
            raise KeyedError(
                ("classifier",), "policy = 'classifier' needs a [routing.classifier] table naming its `model`"
            )
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise KeyedError(
                ("max_cooldown_seconds",),
                f"must be >= cooldown_seconds ({show_value(self.cooldown_seconds)}), "
                f"got {show_value(self.max_cooldown_seconds)}",
            )
        return self
