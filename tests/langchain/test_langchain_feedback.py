"""Feedback from LangChain: score an `AIMessage` of `RoutedChatModel`; the score lands in the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gearshift import InvalidRequestError, Router, open_decision_log, read_records
from gearshift_langchain import RoutedChatModel


async def test_an_answer_is_scored_from_its_message(
    make_router: Callable[..., Router], tmp_path: Path
) -> None:
    router = make_router(decision_log=open_decision_log(tmp_path / "log.jsonl"))
    model = RoutedChatModel(router=router)
    message = await model.ainvoke("What is the capital of France?")
    model.feedback(message, 0.0, source="user", comment="wrong city")
    router.close()
    records = list(read_records(tmp_path / "log.jsonl"))
    feedback = [r for r in records if r["kind"] == "feedback"]
    assert [(f["score"], f["source"], f["comment"]) for f in feedback] == [(0.0, "user", "wrong city")]
    assert feedback[0]["request_id"] == message.response_metadata["gearshift"]["request_id"]
    assert feedback[0]["request_id"] == records[0]["request_id"]  # joins the call's decision


def test_a_message_without_a_routing_record_is_refused(make_router: Callable[..., Router]) -> None:
    from langchain_core.messages import AIMessage

    model = RoutedChatModel(router=make_router())
    with pytest.raises(InvalidRequestError, match="request id"):
        model.feedback(AIMessage(content="not ours"), 1.0)
