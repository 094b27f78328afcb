"""What the router tells the decision log: pure builders of JSON-ready records, and the values
they record (`Attempt`, one provider call; `Escalation`, one hand-over to a stronger model).

Every record carries `schema` (`SCHEMA_VERSION`), `kind`, `ts` (Unix seconds) and `request_id`, which
joins the records of one routed call. The kinds and their fields are documented in
`docs/decision-log.md`; a field is only ever added within one schema version, never renamed or removed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._context import StepContext
from .._decision import Decision
from .._errors import ProviderError
from .._messages import ChatRequest, ChatResponse, Usage

if TYPE_CHECKING:
    from .._models import ModelSpec

__all__ = [
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "Attempt",
    "Escalation",
    "attempt_record",
    "decision_record",
    "escalation_record",
    "feedback_record",
    "overrun_record",
    "refusal_record",
]

SCHEMA_VERSION = 1
"""The version of the decision log's record schema (the `schema` field of every record)."""

RECORD_KINDS = (
    "decision",
    "attempt",
    "escalation",
    "budget_overrun",
    "budget_refusal",
    "feedback",
    "shadow",
    "recalibration",
)
"""Every `kind` a record of this schema version may have."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """One hand-over to a stronger model during a routed call.

    `source` is `"self"` when the model called the injected `escalate` tool (then `reason` is the
    model's own words), `"gate:<name>"` when a cascade's quality gate rejected its answer, or
    `"gate:empty"` when the model answered an earlier hand-over with nothing.
    `failed` is set when the hand-over could not give an answer (every stronger model failed, answered
    with nothing, or the budget refused the call): it is the error; the step then went one tier further
    up, or the caller got the weaker model's answer, or the error.
    """

    from_model: str
    to_model: str
    reason: str
    source: str
    failed: str | None = None

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict for records (`failed` only when the hand-over failed)."""
        out = {"from": self.from_model, "to": self.to_model, "reason": self.reason, "source": self.source}
        if self.failed is not None:
            out["failed"] = self.failed
        return out


@dataclass(frozen=True, slots=True)
class Attempt:
    """One provider call the router made for a request.

    `usage_estimated` is true when the provider could not report usage (a stream that broke or was
    cancelled, an answer whose provider reported none or only part of it): the tokens are then
    gearshift's estimate, so the spend is still accounted for.
    `first_token_ms` is how long an answered stream took to its first event; `ended_ns` the wall clock
    (`time.time_ns()`) when the attempt was over, taken as it is made: attempts may overlap (a
    speculative call and its classification), so their latencies alone cannot place them in time.
    `probe` marks the one-token call a tripped deployment must answer before it takes traffic again
    (`_deployments`): billed like any attempt, but never the call's answer, even when `ok`.
    """

    model_id: str
    provider: str
    ok: bool
    usage: Usage
    cost_usd: float
    latency_ms: float
    streamed: bool = False
    error: ProviderError | None = None
    cancelled: bool = False
    usage_estimated: bool = False
    first_token_ms: float | None = None
    probe: bool = False
    ended_ns: int = field(default_factory=time.time_ns, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The attempt as the framework adapters show it to their callers: the deployment called
        (`model_id` and `provider`), whether it answered, whether it was a probe, tokens and cost."""
        return {
            "model_id": self.model_id,
            "provider": self.provider,
            "ok": self.ok,
            "probe": self.probe,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cost_usd": self.cost_usd,
        }


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return ""


def decision_record(
    *,
    request_id: str,
    ts: float,
    decision: Decision,
    context: StepContext,
    request: ChatRequest,
    include_prompt: bool,
    reference: ModelSpec | None = None,
) -> dict[str, Any]:
    """The record of one routing decision.

    `reference` is the always-strongest counterfactual: the cheapest model of the top eligible tier;
    its prices go into the record so a report can price the call's tokens at it without the config.
    """
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "kind": "decision",
        "ts": ts,
        "request_id": request_id,
        "agent_id": context.agent_id,
        "run_id": context.run_id,
        "step_type": context.step_type.value,
        "step_index": context.step_index,
        **decision.to_dict(),
        "messages": len(request.messages),
        "tools": len(request.tools),
        "reference": None
        if reference is None
        else {
            "model": reference.id,
            "tier": reference.tier,
            "input_per_mtok": reference.prices.input,
            "output_per_mtok": reference.prices.output,
            "prices": reference.prices.model_dump(mode="json"),
        },
    }
    if include_prompt:
        record["prompt"] = _last_user_text(request)
        task = context.metadata.get("task")
        if isinstance(task, str):
            # With the prompt, the caller's task label: a feedback row trains on both.
            record["task"] = task
    return record


def attempt_record(
    *,
    request_id: str,
    ts: float,
    attempt: Attempt,
    context: StepContext,
    answer: ChatResponse | None = None,
) -> dict[str, Any]:
    """The record of one provider attempt, failed ones included; with `answer` (the attempt's
    response, given only under `include_prompts`), also its text and tool calls."""
    error = attempt.error
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "kind": "attempt",
        "ts": ts,
        "request_id": request_id,
        "agent_id": context.agent_id,
        "run_id": context.run_id,
        "model": attempt.model_id,
        "provider": attempt.provider,
        "ok": attempt.ok,
        "probe": attempt.probe,
        "streamed": attempt.streamed,
        "cancelled": attempt.cancelled,
        "input_tokens": attempt.usage.input_tokens,
        "output_tokens": attempt.usage.output_tokens,
        "cache_read_tokens": attempt.usage.cache_read_tokens,
        "cache_write_tokens": attempt.usage.cache_write_tokens,
        "cache_write_1h_tokens": attempt.usage.cache_write_1h_tokens,
        "usage_estimated": attempt.usage_estimated,
        "cost_usd": attempt.cost_usd,
        "latency_ms": round(attempt.latency_ms, 3),
        "error_kind": error.kind if error else None,
        "status_code": error.status_code if error else None,
        "error": str(error) if error else None,
    }
    if answer is not None:
        record["answer"] = answer.text
        record["answer_tool_calls"] = [
            {"name": call.name, "arguments": call.arguments} for call in answer.tool_calls
        ]
    return record


def escalation_record(
    *, request_id: str, ts: float, escalation: Escalation, context: StepContext, outcome: str
) -> dict[str, Any]:
    """The record of one hand-over to a stronger model (self-escalation or a cascade gate), written
    when it has ended: `outcome` is "answered", "empty" (the stronger model answered with nothing: the
    step went one tier further up), "kept" (no stronger answer: the caller got the weaker one) or
    "error" (its error or a cancellation reached the caller); `failed` says why for the last three."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": "escalation",
        "ts": ts,
        "request_id": request_id,
        "agent_id": context.agent_id,
        "run_id": context.run_id,
        **escalation.to_dict(),
        "outcome": outcome,
    }


def overrun_record(
    *,
    request_id: str,
    ts: float,
    context: StepContext,
    model_id: str,
    keys: tuple[str, ...],
    reserved: tuple[float, int],
    billed: tuple[float, int],
) -> dict[str, Any]:
    """The record of a budget violation: under a limit that refuses, a provider billed more (dollars
    or tokens) than the reservation that was to bound the call. The whole bill was recorded."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": "budget_overrun",
        "ts": ts,
        "request_id": request_id,
        "agent_id": context.agent_id,
        "run_id": context.run_id,
        "model": model_id,
        "keys": list(keys),
        "reserved_usd": reserved[0],
        "reserved_tokens": reserved[1],
        "billed_usd": billed[0],
        "billed_tokens": billed[1],
        "excess_usd": max(0.0, billed[0] - reserved[0]),
    }


def refusal_record(
    *, request_id: str, ts: float, context: StepContext, keys: tuple[str, ...], error: str
) -> dict[str, Any]:
    """The record of a call a hard budget limit refused before any model was called."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": "budget_refusal",
        "ts": ts,
        "request_id": request_id,
        "agent_id": context.agent_id,
        "run_id": context.run_id,
        "keys": list(keys),
        "error": error,
    }


def feedback_record(
    *, request_id: str, ts: float, score: float, source: str, comment: str | None
) -> dict[str, Any]:
    """The record of a score given to a routed call's answer after the fact (a user, an evaluator)."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": "feedback",
        "ts": ts,
        "request_id": request_id,
        "score": score,
        "source": source,
        "comment": comment,
    }
