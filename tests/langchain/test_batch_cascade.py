"""`RoutedChatModel.batch` and `abatch` with `batch_cascade`: one `Router.abatch` cascade, local server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from gearshift import InvalidRequestError, Router, RoutingError
from gearshift.testing import Fail, LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

if TYPE_CHECKING:
    from gearshift_langchain._structured import StructuredMethod

QUESTIONS = ["Name the capital of France.", "Explain the Hamlet plot.", "Give the boiling point of water."]


def _script_cheap_answers(server: LocalOpenAIServer) -> None:
    # One input at a time (max_concurrency=1), so the cheap answers arrive in the inputs' order.
    server.script(
        "small",
        Reply("Paris."),
        Reply("I'm sorry, but I can't help with that."),  # the heuristic gate rejects a refusal
        Reply("100 degrees Celsius at sea level."),
    )
    server.script("large", Reply("A prince avenges his father's murder and dies doing it."))


async def test_abatch_sends_only_the_rejected_cheap_answers_to_the_top_tier(
    server: LocalOpenAIServer, router: Router
) -> None:
    _script_cheap_answers(server)
    model = RoutedChatModel(router=router, batch_cascade=True)
    answers = await model.abatch(QUESTIONS, {"max_concurrency": 1, "metadata": {"agent_id": "nightly"}})
    assert [a.content for a in answers] == [
        "Paris.",
        "A prince avenges his father's murder and dies doing it.",
        "100 degrees Celsius at sea level.",
    ]
    records = [a.response_metadata["gearshift"] for a in answers]
    assert [r["model_id"] for r in records] == ["small", "large", "small"]
    assert [r["batch_stage"] for r in records] == ["cheap", "strong", "cheap"]
    assert "refus" in records[1]["batch_rejected"]
    assert [r.model for r in server.requests] == [
        "small",
        "small",
        "small",
        "large",
    ]  # one cascade, no re-asks
    assert all(r["cost_usd"] > 0 for r in records)


def test_sync_batch_takes_messages_and_goes_through_the_same_cascade(
    server: LocalOpenAIServer, router: Router
) -> None:
    _script_cheap_answers(server)
    model = RoutedChatModel(router=router, batch_cascade=True)
    answers = model.batch([[HumanMessage(q)] for q in QUESTIONS], {"max_concurrency": 1})
    assert [a.response_metadata["gearshift"]["model_id"] for a in answers] == ["small", "large", "small"]


async def test_a_failed_input_raises_or_stands_as_its_error(
    server: LocalOpenAIServer, router: Router
) -> None:
    model = RoutedChatModel(router=router, batch_cascade=True)
    # The cheap call is refused as malformed (no fallback for a 400): that input has no answer.
    server.script("small", Fail(400))
    answers = await model.abatch(QUESTIONS[:2], {"max_concurrency": 1}, return_exceptions=True)
    assert isinstance(answers[0], RoutingError) and "batch input 0 got no answer" in str(answers[0])
    assert answers[1].response_metadata["gearshift"]["batch_stage"] == "cheap"
    server.script("small", Fail(400))
    with pytest.raises(RoutingError, match="batch input 0 got no answer"):
        await model.abatch(QUESTIONS[:2], {"max_concurrency": 1})


async def test_without_batch_cascade_a_batch_is_routed_call_by_call(
    server: LocalOpenAIServer, router: Router
) -> None:
    model = RoutedChatModel(router=router)
    server.script("small", Reply("I'm sorry, but I can't help with that."))
    (answer,) = await model.abatch(QUESTIONS[:1])
    assert answer.content == "I'm sorry, but I can't help with that."  # no gate without the cascade
    assert "batch_stage" not in answer.response_metadata["gearshift"]


async def test_an_input_that_cannot_be_sent_stands_as_its_error_and_the_others_are_answered(
    server: LocalOpenAIServer, router: Router
) -> None:
    # LangChain's batch contract: with return_exceptions, each input's failure takes its place in the
    # list, whatever stage it failed at. An audio block cannot be routed: that input's own error.
    model = RoutedChatModel(router=router, batch_cascade=True)
    audio = HumanMessage([{"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"}])
    answers = await model.abatch([QUESTIONS[0], [audio], QUESTIONS[2]], return_exceptions=True)
    assert isinstance(answers[1], InvalidRequestError) and "message 0" in str(answers[1])
    assert [a.response_metadata["gearshift"]["batch_stage"] for a in (answers[0], answers[2])] == [
        "cheap",
        "cheap",
    ]
    assert len(server.requests) == 2  # the refused input never reached a model
    with pytest.raises(InvalidRequestError, match="message 0"):
        await model.abatch([QUESTIONS[0], [audio]])


class Capital(BaseModel):
    """A country's capital."""

    city: str


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
async def test_structured_output_batches_through_the_cascade(
    server: LocalOpenAIServer, router: Router, method: StructuredMethod
) -> None:
    # LangChain hands the tracer's `ls_structured_output_format` to the model with the call options;
    # its own batch takes it off before the call, the cascade refused it as an unknown call option.
    model = RoutedChatModel(router=router, batch_cascade=True)
    answers = await model.with_structured_output(Capital, method=method).abatch(QUESTIONS[:2])
    assert all(isinstance(answer, Capital) for answer in answers)
    assert [r.model for r in server.requests] == ["small", "small"]


@pytest.mark.parametrize(
    ("settings", "metadata", "answered_by"),
    [
        ({"min_tier": 2}, {}, "large"),
        ({"model": "large"}, {}, "large"),
        ({}, {"min_tier": 2}, "large"),
        ({}, {"max_tier": 1}, "small"),
    ],
)
async def test_an_input_held_to_one_tier_is_answered_there_once(
    server: LocalOpenAIServer,
    router: Router,
    settings: dict[str, Any],
    metadata: dict[str, Any],
    answered_by: str,
) -> None:
    # The cascade's stages were the registry's bottom and top tiers whatever the input's own hints
    # said: min_tier=2 or model="large" clashed with the cheap stage's max_tier 1 and every input
    # failed ("min_tier 2 is above max_tier 1"); a rejected max_tier=1 answer failed at the top tier.
    # An input's stages are the lowest and highest tiers its hints allow; one tier, one answer.
    server.script("small", Reply("I'm sorry, but I can't help with that."))  # the gate rejects it
    server.script("large", Reply("I'm sorry, but I can't help with that."))
    model = RoutedChatModel(router=router, batch_cascade=True, **settings)
    (answer,) = await model.abatch(QUESTIONS[:1], {"metadata": metadata})
    assert answer.response_metadata["gearshift"]["model_id"] == answered_by
    assert [r.model for r in server.requests] == [answered_by]
