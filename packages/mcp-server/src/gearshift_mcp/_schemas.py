"""What the MCP tools take and give back: pydantic models whose field descriptions become the schemas.

An MCP client shows these schemas to the model that calls the tools, so every description is written
for that model. Inputs forbid unknown fields (a misspelt `max_tier` must fail, not be ignored) and
take numbers strictly (pydantic's lax mode read `true` as 1), a number written as text aside
(`_numeric_text`); outputs are plain JSON-ready values,
money in float US dollars.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._numeric_text import numbers_from_text

__all__ = [
    "AgentId",
    "AttemptView",
    "BudgetStatusResult",
    "EscalateResult",
    "EscalationView",
    "FeedbackResult",
    "KeyBudget",
    "LimitView",
    "RouteConstraints",
    "RouteResult",
    "RunId",
    "StepTypeName",
    "ToolUse",
]

StepTypeName = Literal["plan", "act", "observe", "reflect", "respond", "summarize", "other", "recover"]
"""The agent step types gearshift knows: the values of `gearshift.StepType`, and `recover` (the step
after a failing tool), which `StepType.parse` takes as `reflect`, as every entry point does."""

AgentId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Your agent's id. Spend is charged to `agent:<id>` and its budget applies; "
        "without it, spend is charged to the server's default agent (`agent:anonymous` unless "
        "configured otherwise).",
    ),
]
RunId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="The id of this run or conversation thread; spend is also charged to `run:<id>`.",
    ),
]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _numbers_from_text(cls, data: Any) -> Any:
        return numbers_from_text(cls, data)


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class ToolUse(_Input):
    """One tool call the agent made so far in this run."""

    name: str = Field(min_length=1, max_length=200, description="The tool's name.")
    ok: bool = Field(default=True, description="false when the call failed or returned an error.")
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="The call's arguments. Optional; with them, repeated identical calls (a loop) are "
        "noticed.",
    )


class RouteConstraints(_Input):
    """Limits the decision must respect."""

    max_cost_usd: float | None = Field(
        default=None,
        ge=0,
        strict=True,
        description="Rule out models whose estimated cost for this call is above this (USD).",
    )
    min_tier: int | None = Field(
        default=None,
        ge=0,
        strict=True,
        description="Weakest tier allowed (tiers are listed by the gearshift://models resource).",
    )
    max_tier: int | None = Field(default=None, ge=0, strict=True, description="Strongest tier allowed.")


class RouteResult(_Output):
    """The model gearshift picks for the step, and why."""

    model: str = Field(description="Registry id of the chosen model.")
    provider: str = Field(description="The provider configuration that serves it.")
    provider_model: str = Field(description="The model name the provider's API knows it by.")
    tier: int = Field(description="The chosen model's tier (higher is stronger).")
    reasons: list[str] = Field(description="Why this model, in plain words.")
    estimated_cost_usd: float = Field(description="Expected cost of the call on this model, in US dollars.")
    fallbacks: list[str] = Field(description="Models tried next, in order, if the chosen one fails.")
    policy: str = Field(description="The routing policy that decided.")
    budget_changed: bool = Field(description="true when the budget moved the choice to a cheaper model.")
    budget_left_usd: float | None = Field(
        description="Dollars the agent (and run) may still spend under its tightest limit; null when no "
        "budget limit applies."
    )


class AttemptView(_Output):
    """One model call made while answering."""

    model: str = Field(description="Registry id of the model called.")
    provider: str = Field(
        description="The deployment called: the configured provider that served the model "
        "(a model served from several places has one per deployment)."
    )
    ok: bool = Field(description="Whether it answered.")
    probe: bool = Field(
        default=False,
        description="True for the one-token probe a tripped deployment must answer before it takes "
        "traffic again: charged like any call, but never the answer, and no fallback when it fails.",
    )
    cost_usd: float = Field(description="What the call cost, in US dollars.")
    error: str | None = Field(default=None, description="Why it failed, when it did.")


class EscalationView(_Output):
    """A hand-over from one model to a stronger one during the call."""

    from_model: str = Field(description="The model that handed over.")
    to_model: str = Field(description="The stronger model that took over.")
    reason: str = Field(description="Why it handed over.")


class EscalateResult(_Output):
    """The stronger model's answer to the escalated problem."""

    answer: str = Field(description="The stronger model's answer.")
    truncated: bool = Field(
        default=False,
        description="True when the answer stopped at max_tokens (or the model's output limit): it is "
        "incomplete; escalate again with a larger max_tokens for the rest.",
    )
    model: str = Field(description="Registry id of the model that answered.")
    tier: int = Field(description="That model's tier.")
    cost_usd: float = Field(description="What the whole escalation cost, failed attempts included (USD).")
    input_tokens: int = Field(description="Input tokens over all attempts.")
    output_tokens: int = Field(description="Output tokens over all attempts.")
    attempts: list[AttemptView] = Field(description="Every model call made, in order.")
    escalations: list[EscalationView] = Field(
        description="Further hand-overs to even stronger models during the call, if any."
    )
    budget_left_usd: float | None = Field(
        description="Dollars the agent may still spend under its tightest limit after this call; null when "
        "no budget limit applies."
    )
    request_id: str = Field(
        default="",
        description="The call's id in gearshift's decision log: pass it to `feedback` to score this answer.",
    )


class FeedbackResult(_Output):
    """The feedback as recorded."""

    request_id: str = Field(description="The call the score is for.")
    score: float = Field(description="The score recorded, in [0, 1].")
    source: str = Field(description="Who scored.")


class LimitView(_Output):
    """Where one budget limit stands for one spend key, in its current window."""

    name: str = Field(description="The limit's name.")
    key: str = Field(description="The spend key it is counted on, e.g. agent:researcher.")
    mode: str = Field(
        description="hard (refuses), soft (alerts) or downgrade (cheaper models as it runs down)."
    )
    window: str = Field(description="The window spend is summed over: lifetime, day, month or rolling:<n>.")
    limit_usd: float | None = Field(description="The cap in US dollars; null when it caps tokens only.")
    limit_tokens: int | None = Field(description="The cap in tokens; null when it caps dollars only.")
    spent_usd: float = Field(description="Dollars spent in the window.")
    spent_tokens: int = Field(description="Tokens spent in the window.")
    reserved_usd: float = Field(description="Dollars held by calls in flight.")
    reserved_tokens: int = Field(description="Tokens held by calls in flight.")
    remaining_usd: float | None = Field(description="Dollars neither spent nor reserved.")
    remaining_tokens: int | None = Field(description="Tokens neither spent nor reserved.")
    left_share: float = Field(description="Share of the limit still free, 0 to 1.")


class KeyBudget(_Output):
    """Every limit on one spend key."""

    key: str = Field(description="The spend key: agent:<id>, run:<id> or a custom key.")
    remaining_usd: float | None = Field(description="The fewest dollars any of its limits has left.")
    limits: list[LimitView] = Field(description="Each limit that applies to the key.")


class BudgetStatusResult(_Output):
    """Spend, reservations and limits."""

    budgets_configured: bool = Field(
        description="false when the server has no budget ledger; then nothing is limited."
    )
    keys: list[KeyBudget] = Field(description="One entry per spend key asked about.")
