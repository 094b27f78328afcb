"""The replay provider: recorded answers, scores, usage and cost, streamed or not, through the router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gearshift._decision import Decision
from gearshift._errors import ProviderError
from gearshift._messages import ChatRequest, Message, StreamDone, StreamEvent, TextDelta, Usage
from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable, load_routellm, routellm_models
from gearshift.policies import RouteInput, make_decision
from gearshift.providers import Provider
from gearshift.providers._replay import ReplayProvider
from gearshift.routing._router import Router
from gearshift.signals._tokens import estimate_tokens

ANSWER = "Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * $2 = $18.\n#### 18"


def _spec(key: str, *, provider: str = "replay", tier: int = 1) -> ModelSpec:
    return ModelSpec(
        id=f"{key}-id", provider=provider, model=key, tier=tier, prices=ModelPrices(input=2.0, output=8.0)
    )


@pytest.fixture
def table() -> OutcomeTable:
    return OutcomeTable(
        [
            OutcomeRow(
                "gsm8k-0",
                "gsm8k",
                "Janet’s ducks lay 16 eggs per day.  How much does she make?",
                {
                    "weak": Outcome(0.0, cost_usd=0.0002, input_tokens=12, output_tokens=30, response="$16"),
                    "strong": Outcome(
                        1.0, cost_usd=0.0031, input_tokens=12, output_tokens=40, response=ANSWER
                    ),
                    "bare": Outcome(0.5),
                },
            ),
            OutcomeRow(
                "chat-1",
                "chat",
                (
                    Message.system("Be brief."),
                    Message.user("Hi"),
                    Message.assistant("Hello!"),
                    Message.user("2+2?"),
                ),
                {"weak": Outcome(1.0, response="4")},
            ),
            OutcomeRow(
                "mmlu-0",
                "mmlu",
                "Which planet is largest?\nA. Mars\nB. Jupiter\nAnswer:",
                {"weak": Outcome(1.0)},
            ),
        ]
    )


def _ask(*texts: str, system: str | None = None) -> ChatRequest:
    messages = [Message.system(system)] if system else []
    for index, text in enumerate(texts):
        messages.append(Message.user(text) if index % 2 == 0 else Message.assistant(text))
    return ChatRequest(messages=tuple(messages))


async def test_complete_returns_the_recorded_answer_score_usage_and_cost(table: OutcomeTable) -> None:
    replay = ReplayProvider(table)
    model = _spec("strong", tier=2)
    response = await replay.complete(
        model, _ask("Janet’s ducks lay 16 eggs per day.  How much does she make?")
    )
    assert response.text == ANSWER
    assert response.message.role == "assistant"
    assert (response.model_id, response.provider_model) == ("strong-id", "strong")
    assert response.metadata == {"score": 1.0, "outcome_id": "gsm8k-0", "task": "gsm8k"}
    assert response.usage == Usage(input_tokens=12, output_tokens=40)
    assert response.cost_usd == 0.0031  # the recorded cost, not the spec's prices
    assert response.finish_reason == "stop"


async def test_lookup_ignores_whitespace_and_system_messages(table: OutcomeTable) -> None:
    replay = ReplayProvider(table)
    request = _ask(
        "  Janet’s ducks lay 16 eggs per day. How much\ndoes she make?\n", system="You are a math tutor."
    )
    response = await replay.complete(_spec("weak"), request)
    assert response.text == "$16"
    assert response.metadata["score"] == 0.0


async def test_string_rows_match_the_first_user_message_of_a_longer_conversation(table: OutcomeTable) -> None:
    request = _ask("Janet’s ducks lay 16 eggs per day.  How much does she make?", "$16", "Are you sure?")
    response = await ReplayProvider(table).complete(_spec("weak"), request)
    assert response.metadata["outcome_id"] == "gsm8k-0"


async def test_conversation_rows_match_all_user_messages(table: OutcomeTable) -> None:
    replay = ReplayProvider(table)
    response = await replay.complete(_spec("weak"), _ask("Hi", "Hello there!", "2+2?", system="Be brief."))
    assert response.text == "4"
    assert response.metadata["outcome_id"] == "chat-1"
    with pytest.raises(ProviderError, match="no row for the prompt 'Hi'"):
        await replay.complete(_spec("weak"), _ask("Hi"))  # only the first user turn of that conversation


async def test_missing_records_are_estimated_and_priced_by_the_spec(table: OutcomeTable) -> None:
    model = _spec("bare")
    response = await ReplayProvider(table).complete(
        model, _ask("Janet’s ducks lay 16 eggs per day.  How much does she make?")
    )
    assert response.text == ""
    expected = Usage(input_tokens=estimate_tokens(table[0].prompt_text), output_tokens=0)
    assert response.usage == expected
    assert expected.input_tokens > 0
    assert response.cost_usd == model.cost(expected)
    assert response.cost_usd > 0


async def test_unknown_prompt_is_a_bad_request_naming_model_and_prompt(table: OutcomeTable) -> None:
    question = "What is the airspeed velocity of an unladen swallow, in metres per second, roughly?"
    with pytest.raises(ProviderError) as info:
        await ReplayProvider(table).complete(_spec("weak"), _ask(question))
    error = info.value
    assert error.kind == "bad_request"
    assert not error.allows_fallback
    assert error.model_id == "weak-id"
    assert str(error) == (
        "weak-id: bad_request: the outcome table has no row for the prompt "
        "'What is the airspeed velocity of an unladen swallow, in met…'"
    )


async def test_model_without_an_outcome_is_a_bad_request(table: OutcomeTable) -> None:
    with pytest.raises(ProviderError) as info:
        await ReplayProvider(table).complete(_spec("strong"), _ask("Hi", "Hello!", "2+2?"))
    assert info.value.kind == "bad_request"
    assert str(info.value) == (
        "strong-id: bad_request: row 'chat-1' (prompt 'Hi 2+2?') has no outcome for model 'strong'; "
        "it has: weak"
    )


async def _collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def test_stream_yields_words_then_the_full_response(table: OutcomeTable) -> None:
    replay = ReplayProvider(table)
    model = _spec("strong", tier=2)
    request = _ask("Janet’s ducks lay 16 eggs per day.  How much does she make?")
    events = await _collect(replay.stream(model, request))
    deltas, done = events[:-1], events[-1]
    assert all(isinstance(event, TextDelta) for event in deltas)
    chunks = [event.text for event in deltas if isinstance(event, TextDelta)]
    assert "".join(chunks) == ANSWER
    assert chunks[:3] == ["Janet ", "sells ", "16 "]
    assert all(len(chunk.split()) == 1 for chunk in chunks)
    assert isinstance(done, StreamDone)
    assert done.response == await replay.complete(model, request)


async def test_stream_of_an_empty_answer_is_just_done(table: OutcomeTable) -> None:
    events = await _collect(
        ReplayProvider(table).stream(
            _spec("bare"), _ask("Janet’s ducks lay 16 eggs per day.  How much does she make?")
        )
    )
    assert len(events) == 1
    assert isinstance(events[0], StreamDone)


async def test_stream_of_an_unknown_prompt_fails_before_any_delta(table: OutcomeTable) -> None:
    stream = ReplayProvider(table).stream(_spec("weak"), _ask("Unknown question"))
    with pytest.raises(ProviderError, match="bad_request"):
        await stream.__anext__()


def test_it_is_a_provider(table: OutcomeTable) -> None:
    replay = ReplayProvider(table, name="offline")
    assert isinstance(replay, Provider)
    assert replay.name == "offline"
    assert "offline" in repr(replay)


@dataclass
class _ByKeyword:
    """Sends prompts that mention `keyword` to the strongest candidate, the rest to the cheapest."""

    keyword: str
    name: str = "by-keyword"

    def decide(self, route: RouteInput) -> Decision:
        text = " ".join(m.text for m in route.request.messages)
        model = route.candidates[-1] if self.keyword in text else route.candidates[0]
        return make_decision(route, model, policy=self.name, reasons=[f"keyword {self.keyword!r}"])


async def test_the_router_replays_real_recorded_outcomes() -> None:
    table = load_routellm("gsm8k").subset(range(20))
    weak, strong = routellm_models()
    with Router(
        ModelRegistry([weak, strong]), policy=_ByKeyword("$"), providers=[ReplayProvider(table)]
    ) as router:
        used = set()
        for row in table:
            routed = await router.acomplete(ChatRequest(messages=row.as_messages()))
            used.add(routed.model_id)
            expected_model = strong.id if "$" in row.prompt_text else weak.id
            outcome = row.outcomes[expected_model]
            assert routed.model_id == expected_model
            assert routed.response.text == outcome.response
            assert routed.response.metadata["score"] == outcome.score
            assert routed.cost_usd == outcome.cost_usd
        assert used == {weak.id, strong.id}
        streamed = [event async for event in router.astream(ChatRequest(messages=table[0].as_messages()))]
    assert isinstance(streamed[-1], StreamDone)
    assert "".join(e.text for e in streamed if isinstance(e, TextDelta)) == streamed[-1].response.text
