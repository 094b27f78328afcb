"""The quality-gate seam: how the router asks whether a cheaper model's answer is good enough.

After a model below the top tier answers, the router hands the answer to the configured gate as an
`AnswerCheck`. The gate returns a `Verdict`; a rejected answer is escalated: the router re-asks a
model of a higher tier with the same request and records why. Gates do no I/O of their own: a gate
that needs a model (an LLM judge, a second sample for self-consistency) calls `AnswerCheck.ask`,
which the router runs through its providers, fallback, budget and attempt records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._context import StepContext
from .._decision import Decision
from .._messages import ChatRequest, ChatResponse

__all__ = ["AnswerCheck", "AskModel", "QualityGate", "Verdict"]

AskModel = Callable[[str, ChatRequest], Awaitable[ChatResponse]]
"""`ask(model_id, request)`: one extra model call on the router's account (recorded and budgeted)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A gate's judgement of one answer.

    `confidence` is the gate's estimate in [0, 1] that the answer is good (None when the gate only
    says yes or no). `reason` says in plain words why an answer was rejected; it ends up in the
    escalation record.
    """

    accept: bool
    gate: str
    reason: str = ""
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """Everything a gate may look at: the request, the answer, the decision that chose the model
    (its `scores` carry the router's pre-call estimate), the step context, and a way to ask a model."""

    request: ChatRequest
    response: ChatResponse
    decision: Decision
    context: StepContext
    ask: AskModel


@runtime_checkable
class QualityGate(Protocol):
    """Checks an answer. Gates compose: a `Cascade` is itself a gate over other gates."""

    @property
    def name(self) -> str:
        """A short name for records and reasons (`heuristic`, `llm-judge`, ...)."""
        ...

    async def check(self, answer: AnswerCheck) -> Verdict:
        """Judge one answer. Must not raise for a bad answer; raise only for the gate's own faults."""
        ...
