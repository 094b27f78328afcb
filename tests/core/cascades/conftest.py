"""Answers to check, built by hand, for the gates that need no model call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from gearshift._context import StepContext
from gearshift._decision import Decision
from gearshift._messages import ChatRequest, ChatResponse, Message, ToolCall
from gearshift.cascades import AnswerCheck


async def _no_model_calls(model_id: str, request: ChatRequest) -> ChatResponse:
    raise AssertionError(f"this gate must not call a model (it asked {model_id})")


@pytest.fixture
def make_check() -> Callable[..., AnswerCheck]:
    """`make_check(text, request=..., tool_calls=..., scores=...)`: an AnswerCheck; its `ask` fails."""

    def make(
        text: str = "",
        *,
        request: ChatRequest | str = "What is 6 times 7?",
        tool_calls: Sequence[ToolCall] = (),
        scores: Mapping[str, float] | None = None,
        model_id: str = "small",
    ) -> AnswerCheck:
        if isinstance(request, str):
            request = ChatRequest(messages=(Message.user(request),))
        decision = Decision(model_id, 1, scores=dict(scores or {}))
        response = ChatResponse(Message.assistant(text, tool_calls), model_id, model_id)
        return AnswerCheck(request, response, decision, StepContext(), _no_model_calls)

    return make
