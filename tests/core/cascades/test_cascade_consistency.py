"""Self-consistency through the real router and a scripted local server: agree, disagree, fail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift._messages import ChatResponse, Message, ToolCall
from gearshift.cascades import SelfConsistencyGate, agree_on_answer
from gearshift.providers import OpenAIProvider
from gearshift.testing import Fail, LocalOpenAIServer, Reply

QUESTION = "Janet has 3 boxes of 6 eggs. How many eggs does she have?"


def _spec(model_id: str, tier: int, price: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="local",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price),
    )


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large")) as server:
        yield server


@pytest.fixture
async def router(server: LocalOpenAIServer) -> AsyncIterator[Router]:
    provider = OpenAIProvider(name="local", base_url=server.base_url, require_key=False, timeout=5.0)
    registry = ModelRegistry([_spec("small", 1, 0.1), _spec("large", 2, 5.0)])
    yield Router(registry, policy=SignalScorer(), providers=[provider])
    await provider.aclose()


async def test_agreeing_samples_keep_the_answer(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="3 * 6 = 18.\n#### 18"), Reply(text="She has 18 eggs."))
    router.cascade = SelfConsistencyGate()

    result = await router.acomplete(QUESTION)

    assert result.model_id == "small"
    assert result.response.text == "3 * 6 = 18.\n#### 18"  # the first answer, not the second sample
    assert [a.model_id for a in result.attempts] == ["small", "small"]
    asked = [r.body["messages"][-1]["content"] for r in server.requests if r.model == "small"]
    assert asked == [QUESTION, QUESTION]


async def test_disagreeing_samples_escalate(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="#### 18"), Reply(text="#### 9"))
    server.script("large", Reply(text="#### 18"))
    router.cascade = SelfConsistencyGate(temperature=0.9)

    result = await router.acomplete(QUESTION)

    assert result.model_id == "large"
    (escalation,) = result.escalations
    assert escalation.source == "gate:self-consistency"
    assert escalation.reason == "a second answer from small reached a different conclusion"
    assert [a.model_id for a in result.attempts] == ["small", "small", "large"]
    temperatures = [r.body.get("temperature") for r in server.requests if r.model == "small"]
    assert temperatures == [None, 0.9]  # only the extra sample is re-sampled hotter


async def test_more_samples_and_a_failed_one(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="#### 18"), Reply(text="#### 18"), Fail(status=500))
    router.cascade = SelfConsistencyGate(3, min_agreement=1.0)

    result = await router.acomplete(QUESTION)

    assert result.model_id == "large"
    assert (
        result.escalations[0].reason
        == "only 1 of 2 more answers from small agreed with the first (1 could not be had)"
    )


async def test_a_majority_can_be_enough(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="#### 18"), Reply(text="#### 18"), Reply(text="#### 17"))
    router.cascade = SelfConsistencyGate(3, min_agreement=0.5)

    result = await router.acomplete(QUESTION)

    assert result.model_id == "small"


def _answer(text: str = "", calls: tuple[ToolCall, ...] = ()) -> ChatResponse:
    return ChatResponse(Message.assistant(text, calls), "small", "small")


def test_tool_calls_agree_on_names_and_argument_values_not_ids_or_key_order() -> None:
    first = _answer(calls=(ToolCall("a1", "search", '{"q": "eggs", "n": 3}'),))
    same = _answer(calls=(ToolCall("b7", "search", '{"n": 3, "q": "eggs"}'),))
    other = _answer(calls=(ToolCall("c2", "search", '{"q": "hens", "n": 3}'),))
    assert agree_on_answer(first, same)
    assert not agree_on_answer(first, other)
    assert not agree_on_answer(first, _answer("I would search for eggs."))
    broken = _answer(calls=(ToolCall("a1", "search", "{q"),))
    assert agree_on_answer(broken, _answer(calls=(ToolCall("zz", "search", "{q"),)))


async def test_a_custom_agreement_and_settings() -> None:
    gate = SelfConsistencyGate(agree=lambda a, b: len(a.text) == len(b.text))
    assert gate.agree(_answer("abc"), _answer("xyz"))
    with pytest.raises(ValueError, match="samples"):
        SelfConsistencyGate(1)
    with pytest.raises(ValueError, match="min_agreement"):
        SelfConsistencyGate(min_agreement=0)
