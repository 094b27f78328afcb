"""Feedback from LlamaIndex: score a `ChatResponse`, `CompletionResponse` or agent output of `RoutedLLM`."""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.tools import FunctionTool

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


# LlamaIndex's workflows inspect the agent, a pydantic model, touching its deprecated attributes.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
async def test_an_agent_s_answer_is_scored(llm: RoutedLLM, decision_log: JSONLDecisionLog) -> None:
    # What an agent builder holds is the agent's `AgentOutput`, not the LLM's response.
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(_add)], llm=llm)

    output = await agent.run(user_msg="What is 2 + 3?")
    llm.feedback(output, 0.0, comment="wrong sum")

    decision_log.flush()
    records = list(read_records(decision_log.path))
    (feedback,) = [r for r in records if r["kind"] == "feedback"]
    last_decision = [r for r in records if r["kind"] == "decision"][-1]
    assert (feedback["request_id"], feedback["score"]) == (last_decision["request_id"], 0.0)


def _add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
