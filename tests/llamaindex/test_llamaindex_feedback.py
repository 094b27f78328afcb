"""Feedback from LlamaIndex: score a `ChatResponse` or `CompletionResponse` of `RoutedLLM`."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse

from gearshift import InvalidRequestError, JSONLDecisionLog, read_records
from gearshift_llamaindex import RoutedLLM


async def test_chat_and_completion_answers_are_scored(llm: RoutedLLM, decision_log: JSONLDecisionLog) -> None:
    chat = await llm.achat([ChatMessage(role="user", content="What is the capital of France?")])
    completion = await llm.acomplete("Name a prime number")
    llm.feedback(chat, 1.0)
    llm.feedback(completion, 0.5, source="grader")
    decision_log.flush()
    records = list(read_records(decision_log.path))
    feedback = [(r["request_id"], r["score"], r["source"]) for r in records if r["kind"] == "feedback"]
    assert feedback == [
        (chat.additional_kwargs["gearshift"]["request_id"], 1.0, "user"),
        (completion.additional_kwargs["gearshift"]["request_id"], 0.5, "grader"),
    ]
    decided = {r["request_id"] for r in records if r["kind"] == "decision"}
    assert {f[0] for f in feedback} <= decided


def test_bad_feedback_is_refused(llm: RoutedLLM) -> None:
    with pytest.raises(InvalidRequestError, match="request id"):
        llm.feedback(ChatResponse(message=ChatMessage(role="assistant", content="x")), 1.0)
    with pytest.raises(InvalidRequestError, match=r"\[0, 1\]"):
        llm.feedback("some-request", 2.0)
