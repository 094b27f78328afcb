"""Signals: pure features of a request that policies route on.

`extract_signals` is implemented in this module; the `Signals` fields are the contract every policy
relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._context import StepType

__all__ = ["Signals"]


@dataclass(frozen=True, slots=True)
class Signals:
    """Features of one request.

    Token counts cover the conversation's messages only: tool schemas attached to the request are
    left out on purpose, so that an agent that always sends its tools is not pushed to a stronger tier.
    Strengths (`code`, `math`, `reasoning`) are in [0, 1].
    """

    prompt_tokens: int
    last_user_tokens: int
    turns: int
    code: float
    math: float
    reasoning: float
    task: str
    step_type: StepType
    consecutive_tool_errors: int
    repeated_tool_calls: int
    run_depth: int
    budget_left_share: float | None
    has_tools: bool
    needs_json: bool
    has_images: bool
