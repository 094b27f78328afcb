"""The LLM judge through the real router, the openai SDK and a scripted local server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gearshift import ChatRequest, Message, ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift.cascades import DEFAULT_JUDGE_PROMPT, Cascade, HeuristicGate, LLMJudgeGate, parse_grade
from gearshift.providers import OpenAIProvider
from gearshift.testing import Fail, LocalOpenAIServer, Reply

QUESTION = "What is the capital of Australia?"


def _spec(model_id: str, tier: int, price: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="local",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price),
    )


REGISTRY = ModelRegistry([_spec("small", 1, 0.1), _spec("large", 2, 5.0), _spec("judge", 3, 1.0)])


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large", "judge")) as server:
        yield server


@pytest.fixture
async def router(server: LocalOpenAIServer) -> AsyncIterator[Router]:
    provider = OpenAIProvider(name="local", base_url=server.base_url, require_key=False, timeout=5.0)
    # One hand-over: the answer of `large` is then final, whatever the judge would say of it.
    yield Router(REGISTRY, policy=SignalScorer(), providers=[provider], max_escalations=1)
    await provider.aclose()


def _judged(router: Router, gate: object) -> Router:
    router.cascade = gate  # type: ignore[assignment]
    return router


async def test_a_low_grade_escalates_and_every_call_is_counted(
    server: LocalOpenAIServer, router: Router
) -> None:
    server.script("small", Reply(text="Sydney."))
    server.script("judge", Reply(text='{"score": 2, "reason": "Canberra is the capital, not Sydney."}'))
    server.script("large", Reply(text="Canberra."))
    gate = LLMJudgeGate("judge", threshold=0.7)

    result = await _judged(router, gate).acomplete(QUESTION)

    assert result.response.text == "Canberra."
    assert [a.model_id for a in result.attempts] == ["small", "judge", "large"]
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))
    (escalation,) = result.escalations
    assert (escalation.from_model, escalation.to_model, escalation.source) == (
        "small",
        "large",
        "gate:llm-judge",
    )
    assert escalation.reason == (
        "the judge (judge) graded the answer 2/10, below 7: Canberra is the capital, not Sydney."
    )
    judge_call = next(r for r in server.requests if r.model == "judge")
    assert judge_call.body["response_format"]["type"] == "json_schema"
    assert judge_call.body["response_format"]["json_schema"]["schema"]["required"] == ["score", "reason"]
    assert judge_call.body["temperature"] == 0.0
    system, user = judge_call.body["messages"]
    assert system["content"] == DEFAULT_JUDGE_PROMPT
    assert QUESTION in user["content"] and "Sydney." in user["content"]


async def test_a_high_grade_keeps_the_cheap_answer(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="Canberra."))
    server.script("judge", Reply(text='```json\n{"score": 9, "reason": "correct"}\n```'))

    result = await _judged(router, LLMJudgeGate("judge")).acomplete(QUESTION)

    assert result.model_id == "small"
    assert result.escalations == ()
    assert [a.model_id for a in result.attempts] == ["small", "judge"]


@pytest.mark.parametrize(("on_failure", "escalates"), [("reject", True), ("accept", False)])
async def test_a_judge_that_answers_garbage_follows_the_documented_rule(
    server: LocalOpenAIServer, router: Router, on_failure: str, escalates: bool
) -> None:
    server.script("small", Reply(text="Canberra."))
    server.script("judge", Reply(text="Looks great to me!"))
    gate = LLMJudgeGate("judge", on_failure=on_failure)  # type: ignore[arg-type]

    result = await _judged(router, gate).acomplete(QUESTION)

    assert (result.model_id == "large") is escalates
    if escalates:
        assert result.escalations[0].reason == (
            "the judge (judge) gave no usable grade ('Looks great to me!'); escalating"
        )


async def test_a_judge_that_cannot_be_reached_never_crashes_the_call(
    server: LocalOpenAIServer, router: Router
) -> None:
    server.script("small", Reply(text="Canberra."))
    server.script("judge", Fail(status=503))
    gate = Cascade([HeuristicGate(), LLMJudgeGate("judge", on_failure="reject")])

    result = await _judged(router, gate).acomplete(QUESTION)

    assert result.model_id == "large"
    reason = result.escalations[0].reason
    assert reason.startswith("the judge (judge) could not be asked:") and reason.endswith("; escalating")
    assert result.escalations[0].source == "gate:llm-judge"
    assert [(a.model_id, a.ok) for a in result.attempts] == [
        ("small", True),
        ("judge", False),
        ("large", True),
    ]


async def test_a_heuristic_rejection_saves_the_judge_call(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="I'm sorry, but I can't help with that."))
    gate = Cascade([HeuristicGate(), LLMJudgeGate("judge")])

    result = await _judged(router, gate).acomplete(QUESTION)

    assert result.escalations[0].source == "gate:heuristic"
    assert not any(r.model == "judge" for r in server.requests)


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ('{"score": 7, "reason": "ok"}', (7.0, "ok")),
        ('{"score": "8"}', (8.0, "")),
        ('Here is my grade: {"score": 3, "reason": "wrong"} Thanks.', (3.0, "wrong")),
        ('{"score": 11, "reason": "great"}', None),
        ('{"score": 0}', None),
        ('{"score": true}', None),
        ('{"grade": 7}', None),
        ("[7]", None),
        ("7/10", None),
        ("", None),
    ],
)
def test_parse_grade(reply: str, grade: tuple[float, str] | None) -> None:
    assert parse_grade(reply) == grade


def test_judge_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        LLMJudgeGate("judge", threshold=7)
    with pytest.raises(ValueError, match="on_failure"):
        LLMJudgeGate("judge", on_failure="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt"):
        LLMJudgeGate("judge", prompt="  ")


async def test_a_custom_prompt_and_unstructured_judge(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Reply(text="Canberra."))
    server.script("judge", Reply(text='{"score": 10}'))
    gate = LLMJudgeGate("judge", prompt="Grade it. Reply with JSON.", structured=False)

    request = ChatRequest(messages=(Message.system("Be brief."), Message.user(QUESTION)))
    result = await _judged(router, gate).acomplete(request)

    assert result.model_id == "small"
    judge_call = next(r for r in server.requests if r.model == "judge")
    assert "response_format" not in judge_call.body
    assert judge_call.body["messages"][0]["content"] == "Grade it. Reply with JSON."
    assert "<system>\nBe brief.\n</system>" in judge_call.body["messages"][1]["content"]
