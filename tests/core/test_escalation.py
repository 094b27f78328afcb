"""Self-escalation and cascade gates in the router, through the real openai SDK and a local server."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gearshift import (
    AllModelsFailed,
    ChatRequest,
    EmptyAnswer,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    ProviderError,
    Router,
    SignalScorer,
    StepContext,
    StreamDone,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    read_records,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.cascades._gate import AnswerCheck, Verdict
from gearshift.providers import OpenAIProvider
from gearshift.routing._decide import DEFAULT_OUTPUT_TOKENS
from gearshift.routing._decision_log import open_decision_log
from gearshift.routing._routed import Escalation, RoutedResponse
from gearshift.routing._self_escalation import ESCALATE_TOOL
from gearshift.signals._tokens import estimate_request_tokens
from gearshift.testing import Drip, Fail, LocalOpenAIServer, Reply

KEY = "sk-escalation-test-3c1f"


def _spec(model_id: str, tier: int, price: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="local",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price * 4),
    )


REGISTRY = ModelRegistry([_spec("small", 1, 0.1), _spec("medium", 2, 1.0), _spec("large", 3, 5.0)])
EASY = "What is the capital of France?"


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "medium", "large"), api_key=KEY) as server:
        yield server


@pytest.fixture
async def provider(server: LocalOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(name="local", api_key=KEY, base_url=server.base_url, timeout=5.0)
    yield provider
    await provider.aclose()


def _router(provider: OpenAIProvider, **options: object) -> Router:
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], **options)  # type: ignore[arg-type]


def _tools_sent(server: LocalOpenAIServer, model: str) -> list[list[str]]:
    return [
        [t["function"]["name"] for t in r.body.get("tools", [])] for r in server.requests if r.model == model
    ]


async def test_a_model_that_escalates_is_replaced_and_the_caller_sees_one_answer(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "this needs a careful proof"})]))
    router = _router(provider, self_escalation=True)

    result = await router.acomplete(EASY)

    assert result.model_id == "medium"
    assert result.escalations == (Escalation("small", "medium", "this needs a careful proof", "self"),)
    assert result.response.tool_calls == ()
    assert [a.model_id for a in result.attempts] == ["small", "medium"]
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))
    assert result.cost_usd > result.response.cost_usd  # the escalated call's cost is counted too
    assert _tools_sent(server, "small") == [["escalate"]]
    assert _tools_sent(server, "medium") == [["escalate"]]  # medium can still escalate to large


async def test_the_top_tier_is_never_offered_the_tool_and_the_callers_tools_are_kept(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    lookup = ToolSpec(name="lookup", description="Look a word up.")
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "r1"})]))
    server.script("medium", Reply(tool_calls=[("escalate", {"reason": "r2"})]))
    router = _router(provider, self_escalation=True)
    request = ChatRequest(messages=(Message.user(EASY),), tools=(lookup,))

    result = await router.acomplete(request)

    assert [e.to_model for e in result.escalations] == ["medium", "large"]
    assert _tools_sent(server, "small") == [["lookup", "escalate"]]
    assert _tools_sent(server, "large") == [["lookup"]]
    assert [c.name for c in result.response.tool_calls] == ["lookup"]  # large's own answer, untouched


async def test_the_decision_counts_the_escalate_tool_in_the_window_and_the_cost_of_who_is_offered_it(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    """Only the reservation counted the `escalate` tool: a request that fit a lower model's context
    window without the tool, and not with it, was sent to that model with the tool anyway, and the
    decision's estimated cost left the tool out."""
    request = ChatRequest(messages=(Message.user(EASY),))
    estimated = estimate_request_tokens(request)
    fits_alone = _spec("small", 1, 0.1).model_copy(
        update={"context_window": estimated + DEFAULT_OUTPUT_TOKENS}
    )
    registry = ModelRegistry([fits_alone, _spec("medium", 2, 1.0)])
    async with Router(registry, policy=SignalScorer(), providers=[provider], self_escalation=True) as router:
        result = await router.acomplete(request)
    assert result.model_id == "medium"  # the top tier, sent no tool: it fits
    assert _tools_sent(server, "small") == []
    log_path = tmp_path / "decisions.jsonl"
    small = _spec("small", 1, 0.1)
    registry = ModelRegistry([small, _spec("medium", 2, 1.0)])
    log = open_decision_log(log_path)
    async with Router(
        registry, policy=SignalScorer(), providers=[provider], self_escalation=True, decision_log=log
    ) as router:
        result = await router.acomplete(request)
    assert (result.model_id, _tools_sent(server, "small")) == ("small", [["escalate"]])
    (decision,) = [r for r in map(json.loads, log_path.read_text().splitlines()) if r["kind"] == "decision"]
    offered = estimated + ESCALATE_TOOL.token_estimate
    assert decision["estimated_cost_usd"] == small.estimate_cost(offered, DEFAULT_OUTPUT_TOKENS)


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (ChatRequest(messages=(Message.user(EASY),), tools=(ToolSpec(name="a"),), tool_choice="a"), "pinned"),
        (
            ChatRequest(messages=(Message.user(EASY),), tools=(ToolSpec(name="a"),), tool_choice="none"),
            "none",
        ),
        (ChatRequest(messages=(Message.user(EASY),), tools=(ToolSpec(name="escalate"),)), "shadowed"),
    ],
)
async def test_the_tool_is_not_offered_when_the_caller_controls_tools(
    server: LocalOpenAIServer, provider: OpenAIProvider, request_: ChatRequest, why: str
) -> None:
    router = _router(provider, self_escalation=True)
    await router.acomplete(request_)
    sent = _tools_sent(server, "small")
    assert sent == [[t.name for t in request_.tools]], why


WRITTEN_CALLS = [
    '{"name": "escalate", "arguments": {"reason": "this needs a careful proof"}}',
    '```json\n{"name": "escalate", "parameters": {"reason": "this needs a careful proof"}}\n```',
    '<tool_call>\n{"name": "escalate", "arguments": {"reason": "this needs a careful proof"}}\n</tool_call>',
]


@pytest.mark.parametrize("written", WRITTEN_CALLS)
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_call_to_escalate_written_out_as_text_hands_over_and_is_never_shown(
    server: LocalOpenAIServer, provider: OpenAIProvider, written: str, streamed: bool
) -> None:
    # Open models behind a server that does not parse their tool calls write them out as text.
    server.script("small", Reply(text=written))
    server.script("medium", Reply(text="Paris, from the medium model"))
    router = _router(provider, self_escalation=True)

    if streamed:
        stream = router.astream(EASY)
        events = [event async for event in stream]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris, from the medium model"
        result = stream.result
    else:
        result = await router.acomplete(EASY)

    assert result is not None and result.model_id == "medium"
    assert result.response.text == "Paris, from the medium model"
    assert result.escalations == (Escalation("small", "medium", "this needs a careful proof", "self"),)


async def test_a_written_call_to_escalate_that_cannot_be_handed_over_is_not_shown_either(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    server.script("small", Reply(text=WRITTEN_CALLS[0]))
    _stronger_models_fail(server)
    router = _router(provider, self_escalation=True)
    with pytest.raises(AllModelsFailed):  # nothing else was said: there is nothing to keep
        await router.acomplete(EASY)
    # Not offered the tool, a model writing the same text is only answering.
    server.script("small", Reply(text=WRITTEN_CALLS[0]))
    plain = await _router(provider).acomplete(EASY)
    assert plain.model_id == "small" and plain.response.text == WRITTEN_CALLS[0]


TICKETS = ToolSpec(
    name="escalate",
    description="Escalate a support ticket to a human agent.",
    parameters={"type": "object", "properties": {"ticket": {"type": "string"}}, "required": ["ticket"]},
)


@pytest.mark.parametrize("self_escalation", [False, True])
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_call_to_the_callers_own_escalate_tool_reaches_the_caller(
    server: LocalOpenAIServer, provider: OpenAIProvider, self_escalation: bool, streamed: bool
) -> None:
    server.script("small", Reply(tool_calls=[("escalate", {"ticket": "T-1"})]))
    router = _router(provider, self_escalation=self_escalation)
    request = ChatRequest(messages=(Message.user("Hand ticket T-1 to a human."),), tools=(TICKETS,))

    if streamed:
        stream = router.astream(request)
        events = [event async for event in stream]
        assert [e.name for e in events if isinstance(e, ToolCallDelta) and e.name] == ["escalate"]
        assert isinstance(events[-1], StreamDone)
        assert [c.name for c in events[-1].response.tool_calls] == ["escalate"]
        result = stream.result
    else:
        result = await router.acomplete(request)

    assert result is not None and result.model_id == "small" and result.escalations == ()
    (call,) = result.response.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("escalate", {"ticket": "T-1"})
    assert result.response.finish_reason == "tool_calls"


async def test_self_escalation_is_off_unless_asked_and_can_be_set_per_call(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider)
    await router.acomplete(EASY)
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "hard"})]))
    result = await router.acomplete(EASY, self_escalation=True)
    assert _tools_sent(server, "small") == [[], ["escalate"]]
    assert result.model_id == "medium"


async def test_max_escalations_caps_the_hand_overs(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "r1"})]))
    router = _router(provider, self_escalation=True, max_escalations=1)
    result = await router.acomplete(EASY)
    assert result.model_id == "medium"
    assert _tools_sent(server, "medium") == [[]]  # no second hand-over was possible, so none offered


async def test_a_streamed_escalation_shows_only_the_stronger_models_events(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    server.script("small", Reply(text="let me think", tool_calls=[("escalate", {"reason": "too hard"})]))
    server.script("medium", Reply(text="Paris, from the medium model"))
    router = _router(provider, self_escalation=True, decision_log=open_decision_log(tmp_path / "log.jsonl"))

    stream = router.astream(EASY)
    events = [event async for event in stream]
    router.close()
    (record,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "escalation"]
    assert (record["to"], record["outcome"]) == ("medium", "answered")

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Paris, from the medium model"
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert isinstance(events[-1], StreamDone)
    assert stream.result is not None
    assert stream.result.escalations[0].reason == "too hard"
    assert [a.model_id for a in stream.result.attempts] == ["small", "medium"]
    assert all(a.streamed for a in stream.result.attempts)


async def test_a_caller_that_stops_reading_the_stronger_stream_is_logged_as_an_unfinished_hand_over(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "too hard"})]))
    server.script("medium", Drip(0.002))  # a slow stream: the caller leaves before its end
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, self_escalation=True, max_escalations=1, decision_log=log)

    stream = router.astream(EASY)
    async for event in stream:
        if isinstance(event, TextDelta):
            break  # the caller saw the stronger model's first words and left
    await stream.aclose()
    router.close()

    (record,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "escalation"]
    assert (record["to"], record["outcome"]) == ("medium", "error")
    assert record["failed"] in ("the caller stopped reading the stream", "cancelled")


async def test_a_held_back_stream_is_released_when_the_model_does_not_escalate(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider, self_escalation=True)
    stream = router.astream(EASY)
    events = [event async for event in stream]
    assert "".join(e.text for e in events if isinstance(e, TextDelta))
    assert stream.result is not None and stream.result.model_id == "small"
    assert stream.result.escalations == ()


class _RejectShortAnswers:
    """A gate for these tests: rejects answers shorter than `min_chars`, and asks a judge once."""

    name = "short"

    def __init__(self, min_chars: int, judge: str | None = None) -> None:
        self.min_chars = min_chars
        self.judge = judge
        self.checked: list[str] = []

    async def check(self, answer: AnswerCheck) -> Verdict:
        self.checked.append(answer.response.model_id)
        if self.judge is not None:
            graded = await answer.ask(self.judge, ChatRequest(messages=(Message.user("grade it"),)))
            assert graded.model_id == self.judge
        if len(answer.response.text) < self.min_chars:
            return Verdict(False, self.name, f"only {len(answer.response.text)} characters")
        return Verdict(True, self.name)


async def test_a_cascade_gate_escalates_a_rejected_answer_and_its_judge_calls_are_counted(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    server.script("small", Reply(text="no"))
    server.script("medium", Reply(text="Paris is the capital of France."))
    gate = _RejectShortAnswers(10, judge="large")
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, cascade=gate, decision_log=log)

    result = await router.acomplete(EASY)
    router.close()

    assert result.model_id == "medium"
    assert result.escalations == (Escalation("small", "medium", "only 2 characters", "gate:short"),)
    assert gate.checked == ["small", "medium"]
    assert [a.model_id for a in result.attempts] == ["small", "large", "medium", "large"]
    records = list(read_records(tmp_path / "log.jsonl"))
    kinds = [r["kind"] for r in records]
    assert kinds.count("escalation") == 1
    assert {r["request_id"] for r in records} == {result.request_id}
    escalation = next(r for r in records if r["kind"] == "escalation")
    assert (escalation["from"], escalation["to"], escalation["source"]) == ("small", "medium", "gate:short")
    assert escalation["outcome"] == "answered" and "failed" not in escalation
    # written once the hand-over ended: after the stronger model's answer, before its own review
    assert kinds.index("escalation") > max(i for i, r in enumerate(records) if r.get("model") == "medium")
    json.dumps(records)  # every record is JSON-ready


async def test_the_top_tier_answer_is_not_gated(server: LocalOpenAIServer, provider: OpenAIProvider) -> None:
    gate = _RejectShortAnswers(10_000)
    router = _router(provider, cascade=gate, max_escalations=5)
    result = await router.acomplete(EASY)
    assert result.model_id == "large"
    assert gate.checked == ["small", "medium"]
    assert [e.source for e in result.escalations] == ["gate:short", "gate:short"]


# -- a hand-over that cannot happen keeps the answer already paid for ------------------------------


def _stronger_models_fail(server: LocalOpenAIServer) -> None:
    """Script every model above small to fail with HTTP 500, so a hand-over finds no answer."""
    server.script("medium", Fail(500))
    server.script("large", Fail(500))


def _unsure_small_model(server: LocalOpenAIServer, provider: OpenAIProvider, text: str) -> Router:
    """A self-escalating router whose small model says `text` and escalates, and above it all fail."""
    server.script("small", Reply(text=text, tool_calls=[("escalate", {"reason": "unsure"})]))
    _stronger_models_fail(server)
    return _router(provider, self_escalation=True)


CAPPED = ChatRequest(messages=(Message.user(EASY),), max_tokens=64)


def _gated_under_a_tight_budget(
    server: LocalOpenAIServer, provider: OpenAIProvider, **options: object
) -> Router:
    """A gated router whose small model answers "no" (rejected) and whose budget of $0.0001 a run
    pays for small's answer to CAPPED but refuses medium's ($0.000267 reserved)."""
    server.script("small", Reply(text="no"))
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="tight", key="run:*", usd=0.0001)])
    return _router(provider, budgets=ledger, cascade=_RejectShortAnswers(10), **options)


async def test_a_rejected_answer_is_kept_when_every_stronger_model_fails(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    server.script("small", Reply(text="no"))
    _stronger_models_fail(server)
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, cascade=_RejectShortAnswers(10), decision_log=log)

    result = await router.acomplete(EASY)
    router.close()

    assert result.model_id == "small"
    assert result.response.text == "no"
    assert [(a.model_id, a.ok) for a in result.attempts] == [
        ("small", True),
        ("medium", False),
        ("large", False),
    ]
    assert result.cost_usd == pytest.approx(result.response.cost_usd)  # the failures were not billed
    (escalation,) = result.escalations
    assert (escalation.from_model, escalation.to_model, escalation.source) == (
        "small",
        "medium",
        "gate:short",
    )
    assert escalation.failed is not None and "HTTP 500" in escalation.failed
    kept = result.decision.reasons[-1]
    assert kept.startswith("kept the tier-1 answer of small, which failed the short gate (only 2 characters)")
    assert "every stronger model failed" in kept
    records = list(read_records(tmp_path / "log.jsonl"))
    attempts = [(r["model"], r["ok"]) for r in records if r["kind"] == "attempt"]
    assert attempts == [("small", True), ("medium", False), ("large", False)]
    # The record says the hand-over found no answer: it was written before, as if it had succeeded.
    (record,) = [r for r in records if r["kind"] == "escalation"]
    assert record["outcome"] == "kept" and "HTTP 500" in record["failed"]
    assert records[-1] is record  # after the stronger models' failed attempts


async def test_a_rejected_answer_is_kept_when_the_budget_refuses_the_stronger_call(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    router = _gated_under_a_tight_budget(
        server, provider, decision_log=open_decision_log(tmp_path / "l.jsonl")
    )

    result = await router.acomplete(CAPPED, StepContext(run_id="r1"))

    assert result.model_id == "small" and result.response.text == "no"
    assert [r.model for r in server.requests] == ["small"]  # the stronger call was never sent
    (escalation,) = result.escalations
    assert escalation.failed is not None and "tight" in escalation.failed
    assert "the budget refused the stronger call" in result.decision.reasons[-1]
    assert router.budgets is not None
    status = await router.budgets.status(["run:r1"])
    assert status.limits[0].spent_usd == pytest.approx(result.cost_usd)
    assert status.limits[0].reserved_usd == 0
    router.close()
    records = list(read_records(tmp_path / "l.jsonl"))
    assert [r["kind"] for r in records] == ["decision", "attempt", "decision", "escalation", "budget_refusal"]
    assert records[3]["outcome"] == "kept" and "tight" in records[3]["failed"]


async def test_a_bad_request_to_the_stronger_model_still_raises(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    server.script("small", Reply(text="no"))
    server.script("medium", Fail(400))
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, cascade=_RejectShortAnswers(10), decision_log=log)
    with pytest.raises(ProviderError) as refused:
        await router.acomplete(EASY)
    assert refused.value.kind == "bad_request"
    router.close()
    (record,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "escalation"]
    assert record["outcome"] == "error" and "400" in record["failed"]


async def test_a_streamed_rejected_answer_is_released_when_the_stronger_models_fail(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    server.script("small", Reply(text="no"))
    _stronger_models_fail(server)
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, cascade=_RejectShortAnswers(10), decision_log=log)

    stream = router.astream(EASY)
    events = [event async for event in stream]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "no"
    assert isinstance(events[-1], StreamDone) and events[-1].response.model_id == "small"
    assert stream.result is not None and stream.result.model_id == "small"
    assert stream.result.escalations[0].failed is not None
    assert "kept the tier-1 answer" in stream.result.decision.reasons[-1]
    router.close()
    (record,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "escalation"]
    assert record["outcome"] == "kept" and "HTTP 500" in record["failed"]


async def test_a_self_escalation_that_fails_keeps_the_small_models_words(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _unsure_small_model(server, provider, "Paris, I think")

    result = await router.acomplete(EASY)

    assert result.model_id == "small" and result.response.text == "Paris, I think"
    assert result.response.tool_calls == ()  # the call to escalate is never shown
    assert result.response.finish_reason == "stop"
    assert "kept the tier-1 answer of small, which asked to escalate (unsure)" in result.decision.reasons[-1]


async def test_a_self_escalation_with_nothing_else_to_say_still_raises_when_it_fails(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _unsure_small_model(server, provider, "")
    with pytest.raises(AllModelsFailed):
        await router.acomplete(EASY)


async def test_a_streamed_rejected_answer_is_released_when_the_budget_refuses_the_stronger_call(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _gated_under_a_tight_budget(server, provider)

    stream = router.astream(CAPPED, StepContext(run_id="r2"))
    events = [event async for event in stream]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "no"
    assert [r.model for r in server.requests] == ["small"]
    assert stream.result is not None and stream.result.model_id == "small"
    assert "the budget refused the stronger call" in stream.result.decision.reasons[-1]


async def test_a_streamed_self_escalation_that_fails_shows_the_small_models_words_without_the_call(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _unsure_small_model(server, provider, "Paris, I think")

    stream = router.astream(EASY)
    events = [event async for event in stream]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris, I think"
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert isinstance(events[-1], StreamDone) and events[-1].response.tool_calls == ()
    assert stream.result is not None and stream.result.escalations[0].failed is not None


# -- a hand-over answered with nothing ----------------------------------------------------------------


async def _routed(router: Router, streamed: bool, context: StepContext | None = None) -> RoutedResponse:
    """The routed answer to EASY, through `acomplete` or read to its end through `astream`."""
    if not streamed:
        return await router.acomplete(EASY, context)
    stream = router.astream(EASY, context)
    events = [event async for event in stream]
    assert stream.result is not None and isinstance(events[-1], StreamDone)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == stream.result.response.text
    return stream.result


def _handed_up(
    server: LocalOpenAIServer,
    provider: OpenAIProvider,
    path: Path,
    answers: tuple[str, str],
    **options: object,
) -> Router:
    """A self-escalating router, logging to `path`, whose small model hands the step up at once, and
    whose medium and large models then answer `answers`."""
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "too hard"})]))
    server.script("medium", Reply(text=answers[0]))
    server.script("large", Reply(text=answers[1]))
    return _router(provider, self_escalation=True, decision_log=open_decision_log(path), **options)


def _escalation_records(path: Path) -> list[tuple[str, str, str]]:
    return [(r["from"], r["to"], r["outcome"]) for r in read_records(path) if r["kind"] == "escalation"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_hand_over_answered_with_nothing_goes_one_tier_further_up(
    server: LocalOpenAIServer,
    provider: OpenAIProvider,
    tmp_path: Path,
    streamed: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = _handed_up(server, provider, tmp_path / "log.jsonl", (" \n ", "Paris, from the large model"))

    with caplog.at_level(logging.INFO, logger="gearshift"):
        result = await _routed(router, streamed)
    router.close()

    assert (result.model_id, result.response.text) == ("large", "Paris, from the large model")
    first, second = result.escalations
    assert (first.from_model, first.to_model, first.source) == ("small", "medium", "self")
    assert first.failed is not None and "medium (tier 2) answered with nothing" in first.failed
    assert second == Escalation("medium", "large", first.failed, "gate:empty")
    assert [a.model_id for a in result.attempts] == ["small", "medium", "large"]
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))
    assert _escalation_records(tmp_path / "log.jsonl") == [
        ("small", "medium", "empty"),
        ("medium", "large", "answered"),
    ]
    # The answer is large's, not one kept after a failed hand-over: its log line gives all its reasons.
    (info,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name == "gearshift"]
    assert "2 escalations (self failed, gate:empty)" in info
    assert info.endswith(": " + "; ".join(result.decision.reasons))


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_hand_over_answered_with_nothing_by_the_top_tier_raises_and_is_charged(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path, streamed: bool
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="run", key="run:*", usd=5.0)])
    router = _handed_up(server, provider, tmp_path / "log.jsonl", ("", "   "), budgets=ledger)

    seen: list[object] = []  # what a stream showed before its error: not even the whitespace
    with pytest.raises(EmptyAnswer) as raised:
        if streamed:
            async for event in router.astream(EASY, StepContext(run_id="r1")):
                seen.append(event)
        else:
            await router.acomplete(EASY, StepContext(run_id="r1"))
    router.close()
    assert seen == []

    message = str(raised.value)
    assert "large (tier 3) answered with nothing (no text, no tool call)" in message
    assert "no stronger tier is left to ask" in message
    assert raised.value.request_id is not None
    records = list(read_records(tmp_path / "log.jsonl"))
    assert _escalation_records(tmp_path / "log.jsonl") == [
        ("small", "medium", "empty"),
        ("medium", "large", "error"),
    ]
    assert [r for r in records if r["kind"] == "escalation"][-1]["failed"] == message
    attempts = [r for r in records if r["kind"] == "attempt"]
    assert [(r["model"], r["ok"]) for r in attempts] == [("small", True), ("medium", True), ("large", True)]
    status = await ledger.status(["run:r1"])
    assert status.limits[0].spent_usd == pytest.approx(sum(r["cost_usd"] for r in attempts))
    assert status.limits[0].spent_usd > 0 and status.limits[0].reserved_usd == 0


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_hand_over_answered_with_nothing_keeps_the_weaker_models_words(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path, streamed: bool
) -> None:
    server.script("small", Reply(text="Paris, I think", tool_calls=[("escalate", {"reason": "unsure"})]))
    server.script("medium", Reply(text=""))
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, self_escalation=True, max_escalations=1, decision_log=log)

    result = await _routed(router, streamed)
    router.close()

    assert (result.model_id, result.response.text) == ("small", "Paris, I think")
    assert result.response.tool_calls == ()
    kept = result.decision.reasons[-1]
    assert kept.startswith("kept the tier-1 answer of small, which asked to escalate (unsure): ")
    assert "medium (tier 2) answered with nothing" in kept
    assert _escalation_records(tmp_path / "log.jsonl") == [("small", "medium", "kept")]
