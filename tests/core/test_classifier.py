"""The classifier policy and speculative routing, end to end through `Router` on a local OpenAI server."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gearshift import (
    CallerHints,
    ConfigError,
    GearshiftConfig,
    Router,
    ShadowConfig,
    StepContext,
    TextDelta,
    read_records,
)
from gearshift._messages import ChatRequest, Message
from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.learning import DefaultPolicy
from gearshift.policies import ClassifierConfig, ClassifierPolicy, RulesPolicy, task_rules
from gearshift.providers._openai import OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.routing._speculative import _stop
from gearshift.testing import CutStream, Delay, Drip, Fail, LocalOpenAIServer, Reply

PROMPT = "Summarise the plot of Hamlet in two sentences."


def _spec(model_id: str, tier: int, price: float) -> ModelSpec:
    prices = ModelPrices(input=price, output=price)
    return ModelSpec(id=model_id, provider="local", model=model_id, tier=tier, prices=prices)


# The classifier ("judge") is a tier-0 model dearer than "mini", so the fast model is always "mini".
REGISTRY = ModelRegistry([_spec("mini", 0, 0.1), _spec("judge", 0, 0.3), _spec("large", 1, 5.0)])


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("mini", "judge", "large")) as local:
        yield local


def _router(server: LocalOpenAIServer, log: Path | None = None, **settings: Any) -> Router:
    # A generous classification timeout unless a test sets one: a test's first call also imports the
    # SDK, which takes seconds on a loaded machine and must not read as a classifier timeout.
    settings.setdefault("timeout", 30.0)
    config = ClassifierConfig(model="judge", **settings)
    policy = ClassifierPolicy(config, fallback=DefaultPolicy(), tiers=REGISTRY.tiers)
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=10.0)])
    decision_log = open_decision_log(log) if log is not None else None
    return Router(REGISTRY, policy=policy, providers=[provider], budgets=ledger, decision_log=decision_log)


def _models(server: LocalOpenAIServer) -> list[str]:
    return [request.body["model"] for request in server.requests]


async def test_the_classified_tier_answers_and_the_classification_is_charged_and_recorded(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Reply("1"))
    router = _router(server)
    answer = await router.acomplete(PROMPT, StepContext(agent_id="writer"))
    assert answer.model_id == "large" and answer.decision.policy == "classifier"
    assert answer.decision.reasons[0].startswith("classifier judge (")
    assert answer.decision.reasons[0].endswith("'1' -> tier 1")
    assert [a.model_id for a in answer.attempts] == ["judge", "large"]
    assert _models(server) == ["judge", "large"]
    assert "Summarise the plot of Hamlet" in server.requests[0].body["messages"][0]["content"]
    assert router.budgets is not None
    status = await router.budgets.status(["agent:writer"])
    assert status.limits[0].spent_usd == pytest.approx(answer.cost_usd)  # both calls charged to the step
    await router.aclose()


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (
            Reply("Hard to say, it depends on the reader."),
            "replied 'Hard to say, it depends on the reader.', which names no tier",
        ),
        (Delay(3.0), "timed out after 0.4 s"),
        (Fail(500), "failed (AllModelsFailed"),
    ],
    ids=["garbage", "timeout", "error"],
)
async def test_a_bad_classification_falls_back_to_the_default_policy_and_says_so(
    server: LocalOpenAIServer, action: Any, reason: str
) -> None:
    server.script("judge", action)
    router = _router(server, timeout=0.4 if isinstance(action, Delay) else 30.0)
    answer = await router.acomplete(PROMPT, StepContext(agent_id="writer"))
    assert answer.decision.policy == "default"
    assert reason in answer.decision.reasons[0]
    assert answer.decision.reasons[0].endswith(": the default policy decides")
    assert answer.model_id == answer.decision.model
    # The classification is one of the step's attempts whether it answered, timed out or failed, and
    # the answer's cost is what the ledger charged: a timed-out call's input is paid, a 500's is not.
    judged = [a for a in answer.attempts if a.model_id == "judge"]
    assert len(judged) == 1 and judged[0].ok == isinstance(action, Reply)
    assert judged[0].cancelled == isinstance(action, Delay)
    assert (judged[0].cost_usd > 0) == (not isinstance(action, Fail))
    assert router.budgets is not None
    status = await router.budgets.status(["agent:writer"])
    assert status.limits[0].spent_usd == pytest.approx(answer.cost_usd)
    await router.aclose()


NAMED = {"easy": 0, "very hard": 1}


@pytest.mark.parametrize(
    ("reply", "labels", "tier"),
    [
        ("", None, None),
        ("%$#@ lorem", None, None),
        ("I'm sorry, I can't help with 1 request like that.", None, None),  # a refusal, not a verdict
        ("0.5", None, None),
        ("7", None, None),  # no such tier
        ('{"tier": 1}', None, 1),
        ('```json\n{"label": "1"}\n```', None, 1),  # fenced JSON, as chat models like to
        ("**1**", None, 1),
        ("Tier 1.", None, 1),
        ("EASY", NAMED, 0),
        ("Very Hard", NAMED, 1),  # a label of two words
        ('{"label": "very hard"}', NAMED, 1),
        ("`easy` - a summary", NAMED, 0),
        ("Tier 1", NAMED, 1),  # a tier's number names it when the labels are words
        ("not easy: very hard", NAMED, None),
    ],
)
async def test_the_reply_must_name_a_tier_and_what_wraps_it_is_taken_off(
    server: LocalOpenAIServer, reply: str, labels: dict[str, int] | None, tier: int | None
) -> None:
    server.script("judge", Reply(reply))
    router = _router(server, labels=labels)
    answer = await router.acomplete(PROMPT)
    if tier is None:
        assert answer.decision.policy == "default"
        assert answer.decision.reasons[0].endswith("which names no tier: the default policy decides")
    else:
        assert answer.decision.policy == "classifier" and answer.decision.scores["tier"] == tier
    await router.aclose()


async def test_the_classifier_reads_the_latest_user_message_however_long_the_conversation(
    server: LocalOpenAIServer,
) -> None:
    report = "Quarterly figures. " * 300  # 5,700 characters pasted in the first turn
    question = "Now prove that the figures' growth rate is bounded by a geometric series."
    conversation = ChatRequest(
        messages=(Message.user(report), Message.assistant("Noted."), Message.user(question))
    )
    long_last = ChatRequest(messages=(Message.user(f"{report}\n\n{question}"),))
    server.script("judge", Reply("1"), Reply("1"))
    router = _router(server)
    for request in (conversation, long_last):
        await router.acomplete(request)
    asked = [r.body["messages"][0]["content"] for r in server.requests if r.model == "judge"]
    assert len(asked) == 2 and all(question in text for text in asked)  # not cut off by the report
    assert all("Quarterly figures." in text for text in asked)
    await router.aclose()


async def test_verdicts_are_cached_by_prompt_and_decide_never_calls_a_model(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Reply("tier: 1"))
    router = _router(server, pattern=r"tier:\s*(\d)")
    first = await router.acomplete(PROMPT)
    second = await router.acomplete(PROMPT)
    assert first.model_id == second.model_id == "large"
    assert second.decision.reasons[0] == "classifier judge (cached): tier 1"
    assert _models(server) == ["judge", "large", "large"]
    offline = router.decide(PROMPT)
    assert offline.reasons[0].startswith("no classification (this decision calls no model)")
    assert (await router.adecide("Another prompt")).policy == "default"
    assert len(server.requests) == 3  # neither decision called the classifier
    await router.aclose()


async def test_identical_concurrent_prompts_share_one_classification_paid_by_the_call_that_asked(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Delay(0.3, Reply("1")))
    router = _router(server)
    answers = await asyncio.gather(
        router.acomplete(PROMPT, StepContext(agent_id="asker")),
        router.acomplete(PROMPT, StepContext(agent_id="waiter")),
    )
    assert [r.model for r in server.requests].count("judge") == 1
    assert [a.model_id for a in answers] == ["large", "large"]
    asker, waiter = answers
    assert [a.model_id for a in asker.attempts] == ["judge", "large"]
    assert [a.model_id for a in waiter.attempts] == ["large"]  # it waited for the verdict, paid nothing
    assert waiter.decision.reasons[0] == "classifier judge (asked by a concurrent call): tier 1"
    assert router.budgets is not None
    for answer, agent in ((asker, "asker"), (waiter, "waiter")):
        (usage,) = await router.budgets.usage([f"agent:{agent}"])
        assert usage.spent_usd == pytest.approx(answer.cost_usd) and usage.reserved_usd == 0
    await router.aclose()


async def test_a_call_whose_timeout_runs_out_waiting_for_a_concurrent_classification_says_so(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """Two identical prompts at once and a classifier slower than the timeout: the call that waited
    for the other's classification timed out first (the asker still unwinding its cancelled call)
    and, listing no classifier attempt, gave the same reason as a slow classifier call of its own,
    "classifier judge timed out after 0.5 s", sending a reader to look for a call it never made."""
    router = _router(server, tmp_path / "log.jsonl", timeout=0.5)
    # The SDK's import must not eat the timeout: a first call that needs no classification makes it.
    await router.acomplete("Warm up.", StepContext(hints=CallerHints(force_model="mini")))
    server.script("judge", Delay(3.0, Reply("1")), Delay(3.0, Reply("1")))
    asker, waiter = await asyncio.gather(
        router.acomplete(PROMPT, StepContext(agent_id="asker")),
        router.acomplete(PROMPT, StepContext(agent_id="waiter")),
    )
    await router.aclose()
    assert [a.model_id for a in asker.attempts] == ["judge", "mini"]
    assert asker.decision.reasons[0] == "classifier judge timed out after 0.5 s: the default policy decides"
    assert [a.model_id for a in waiter.attempts] == ["mini"]  # it waited, and asked nobody
    said = (
        "classifier judge not asked: a concurrent call's classification of the same prompt was still "
        "running when this call's 0.5 s ran out: the default policy decides"
    )
    assert waiter.decision.reasons[0] == said
    logged = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "decision"]
    assert [r["reasons"][0] for r in logged if r["agent_id"] == "waiter"] == [said]


async def test_a_waiter_that_asks_itself_too_late_says_how_long_it_waited(server: LocalOpenAIServer) -> None:
    """A call whose concurrent classification failed asks itself with what the wait left of its
    timeout; when that runs out, its reason says where the time went, not only "timed out"."""
    router = _router(server, timeout=1.0)
    await router.acomplete("Warm up.", StepContext(hints=CallerHints(force_model="mini")))
    server.script("judge", Delay(0.4, Fail(500)), Delay(3.0, Reply("1")))
    asker = asyncio.ensure_future(router.acomplete(PROMPT, StepContext(agent_id="asker")))
    await asyncio.sleep(0.1)
    waiter = await router.acomplete(PROMPT, StepContext(agent_id="waiter"))
    await asker
    await router.aclose()
    assert [a.model_id for a in waiter.attempts] == ["judge", "mini"]  # its own ask, cut short
    assert re.fullmatch(
        r"classifier judge timed out after 1 s, 0\.[2-9]\d* s of it waiting for a concurrent call's "
        r"classification of the same prompt, which gave no verdict: the default policy decides",
        waiter.decision.reasons[0],
    ), waiter.decision.reasons[0]


@pytest.mark.parametrize("how", ["cancelled", "failed"])
async def test_a_shared_classification_that_ends_without_a_verdict_leaves_the_waiter_to_ask_itself(
    server: LocalOpenAIServer, how: str
) -> None:
    first = Delay(0.5, Reply("1")) if how == "cancelled" else Delay(0.3, Fail(500))
    server.script("judge", first, Reply("1"))
    router = _router(server)
    asker = asyncio.ensure_future(router.acomplete(PROMPT, StepContext(agent_id="asker")))
    await asyncio.sleep(0.1)
    waiter = asyncio.ensure_future(router.acomplete(PROMPT, StepContext(agent_id="waiter")))
    await asyncio.sleep(0.1)
    if how == "cancelled":
        asker.cancel()
    answer = await waiter
    assert answer.model_id == "large" and answer.decision.policy == "classifier"
    assert [a.model_id for a in answer.attempts] == ["judge", "large"]  # it asked, and paid, itself
    if how == "cancelled":
        with pytest.raises(asyncio.CancelledError):
            await asker
    else:
        assert (await asker).decision.policy == "default"  # the asker's own failure is its own
    again = await router.acomplete(PROMPT)  # the waiter's verdict is kept, the failure never was
    assert again.decision.reasons[0] == "classifier judge (cached): tier 1"
    assert [r.model for r in server.requests].count("judge") == 2
    await router.aclose()


async def test_speculation_keeps_the_fast_answer_when_the_classifier_picks_its_tier(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Reply("0"))
    router = _router(server, speculative=True)
    answer = await router.acomplete(PROMPT)
    assert answer.model_id == "mini"
    assert (
        answer.decision.reasons[0].startswith("classifier judge (") and answer.decision.policy == "classifier"
    )
    assert answer.decision.reasons[-1] == "speculative: tier 0 is the fast model's; mini's answer is kept"
    assert sorted(a.model_id for a in answer.attempts) == ["judge", "mini"]
    assert sorted(_models(server)) == ["judge", "mini"]
    await router.aclose()


async def test_speculation_cancels_the_fast_call_when_the_classifier_picks_a_stronger_tier(
    server: LocalOpenAIServer,
) -> None:
    server.script("mini", Delay(5.0))
    # The verdict comes a moment after the fast call is sent: an instant one could land before the fast
    # call reached the wire on a loaded machine (cancelled unsent, which is right but not this test).
    server.script("judge", Delay(0.5, Reply("1")))
    router = _router(server, speculative=True)
    started = time.perf_counter()
    answer = await router.acomplete(PROMPT)
    assert time.perf_counter() - started < 4.0  # the slow fast answer was not waited for
    assert answer.model_id == "large"
    assert answer.decision.reasons[-1] == "speculative: mini cancelled, the classifier picked tier 1"
    cancelled = [a for a in answer.attempts if a.model_id == "mini"]
    assert len(cancelled) == 1 and cancelled[0].cancelled and cancelled[0].cost_usd > 0  # paid, estimated
    assert answer.cost_usd == pytest.approx(sum(a.cost_usd for a in answer.attempts))
    assert sorted(_models(server)) == ["judge", "large", "mini"]  # the fast call did reach the wire
    await router.aclose()


async def test_a_speculative_call_whose_fast_call_fails_is_answered_by_the_chain(
    server: LocalOpenAIServer,
) -> None:
    server.script("mini", Fail(500))  # the speculative call is forced onto mini: no fallback inside it
    server.script("judge", Reply("0"))
    router = _router(server, speculative=True)
    answer = await router.acomplete(PROMPT, StepContext(agent_id="writer"))
    # The chain of the classified tier answers: mini is cooling down after its 500, so judge does.
    assert answer.model_id == "judge" and answer.response.text
    assert answer.decision.reasons[-1] == "speculative: mini failed (AllModelsFailed), so the chain answers"
    tried = [(a.model_id, a.ok) for a in answer.attempts]
    assert tried == [("judge", True), ("mini", False), ("judge", True)]
    assert router.budgets is not None
    status = await router.budgets.status(["agent:writer"])
    assert status.limits[0].spent_usd == pytest.approx(answer.cost_usd)
    await router.aclose()


@pytest.mark.parametrize(
    ("judge", "cancel_at", "dropped"),
    [(Delay(3.0, Reply("1")), 0.6, ["judge", "mini"]), (Delay(0.3, Reply("1")), 1.2, ["large", "mini"])],
    ids=["while-classifying", "while-the-chosen-model-answers"],
)
async def test_a_caller_cancelling_mid_speculation_drops_and_settles_every_call_in_flight(
    server: LocalOpenAIServer, judge: Delay, cancel_at: float, dropped: list[str]
) -> None:
    server.script("judge", judge)
    server.script("mini", Delay(5.0))
    server.script("large", Delay(5.0))
    router = _router(server, speculative=True)
    call = asyncio.ensure_future(router.acomplete(PROMPT, StepContext(agent_id="writer")))
    await asyncio.sleep(cancel_at)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for model in dropped:
        await _hangups(server, model)
    assert sorted(await _hangups(server, dropped[0])) == dropped  # both connections dropped
    assert router.budgets is not None
    (usage,) = await router.budgets.usage(["agent:writer"])
    assert usage.reserved_usd == 0 and usage.spent_usd > 0  # settled: the cancelled calls are paid
    await router.aclose()


async def test_stopping_a_speculative_call_passes_the_callers_own_cancellation_on() -> None:
    unwound = asyncio.Event()

    async def fast_call() -> None:  # a call whose chain takes a moment to settle once cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)
            unwound.set()
            raise

    fast = asyncio.ensure_future(fast_call())
    await asyncio.sleep(0)
    caller = asyncio.ensure_future(_stop(fast))
    await asyncio.sleep(0.05)
    caller.cancel()  # the caller gives up while the fast call unwinds
    with pytest.raises(asyncio.CancelledError):
        await caller  # was swallowed, and the caller went on to ask the chosen model
    assert unwound.is_set() and fast.cancelled()  # the fast call was still waited for


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_speculation_keeps_the_fast_answer_when_the_budget_leaves_only_its_tier(
    server: LocalOpenAIServer, streamed: bool
) -> None:
    server.script("judge", Reply("1"))
    classified = _router(server, speculative=True)
    # Room for the classification and a call or two to mini, never for large's.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=0.00012)])
    router = Router(
        REGISTRY, policy=classified.policy, providers=list(classified.providers.values()), budgets=ledger
    )
    context = StepContext(agent_id="writer")
    if streamed:
        stream = router.astream(PROMPT, context)
        assert "".join([event.text async for event in stream if isinstance(event, TextDelta)])
        answer = stream.result
        assert answer is not None
    else:
        answer = await router.acomplete(PROMPT, context)
    assert answer.model_id == "mini"
    assert any(reason.startswith("budget: ") for reason in answer.decision.reasons)
    assert answer.decision.reasons[-1].startswith("speculative: tier 0 is the fast model's; mini's ")
    assert sorted(a.model_id for a in answer.attempts) == ["judge", "mini"]  # mini was asked once
    assert sorted(_models(server)) == ["judge", "mini"]
    (usage,) = await ledger.usage(["agent:writer"])
    assert usage.spent_usd == pytest.approx(answer.cost_usd) and usage.reserved_usd == 0
    await router.aclose()


async def test_a_stream_without_a_ledger_asks_the_classifier_before_it_starts(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Reply("1"))
    classified = _router(server)
    router = Router(REGISTRY, policy=classified.policy, providers=list(classified.providers.values()))
    stream = router.astream(PROMPT)
    assert stream.decision is None  # decided once iteration starts, after the classification
    text = "".join([event.text async for event in stream if isinstance(event, TextDelta)])
    assert text and stream.result is not None and stream.result.model_id == "large"
    assert stream.result.decision.reasons[0].endswith("'1' -> tier 1")
    assert _models(server) == ["judge", "large"]
    await router.aclose()


async def _hangups(server: LocalOpenAIServer, model: str) -> list[str]:
    """The models whose client hung up, once `model`'s hang-up reached the server (or after 5 s)."""
    for _ in range(500):
        if any(request.model == model for request in server.hangups):
            break
        await asyncio.sleep(0.01)
    return [request.model or "" for request in server.hangups]


async def test_a_speculative_stream_holds_the_fast_chunks_until_the_classifier_keeps_them(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Delay(0.3, Reply("0")))
    server.script("mini", Reply("Hamlet avenges his father and dies."))
    router = _router(server, speculative=True)
    stream = router.astream(PROMPT)
    chunks = [event.text async for event in stream if isinstance(event, TextDelta)]
    assert "".join(chunks) == "Hamlet avenges his father and dies."
    assert stream.decision is not None and stream.decision.policy == "classifier"
    assert stream.decision.reasons[0].startswith("classifier judge (")  # decided before the first chunk
    assert stream.decision.reasons[-1] == "speculative: tier 0 is the fast model's; mini's stream is kept"
    result = stream.result
    assert result is not None and result.model_id == "mini"
    assert sorted(a.model_id for a in result.attempts) == ["judge", "mini"]
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))
    assert sorted(_models(server)) == ["judge", "mini"] and server.hangups == []
    await router.aclose()


async def test_a_speculative_stream_is_cancelled_on_the_wire_when_the_classifier_picks_a_stronger_tier(
    server: LocalOpenAIServer,
) -> None:
    server.script("mini", Drip(0.01))  # the fast stream trickles: it is still open at the verdict
    server.script("judge", Delay(0.5, Reply("1")))  # the fast call is on the wire by the verdict
    server.script("large", Reply("A prince feigns madness to expose his uncle."))
    router = _router(server, speculative=True)
    stream = router.astream(PROMPT)
    chunks = [event.text async for event in stream if isinstance(event, TextDelta)]
    assert "".join(chunks) == "A prince feigns madness to expose his uncle."  # only the chosen model's
    assert await _hangups(server, "mini") == ["mini"]  # the fast stream's connection was dropped
    result = stream.result
    assert result is not None and result.model_id == "large"
    assert result.decision.reasons[-1] == "speculative: mini's stream cancelled, the classifier picked tier 1"
    cancelled = [a for a in result.attempts if a.model_id == "mini"]
    assert len(cancelled) == 1 and cancelled[0].cancelled and cancelled[0].cost_usd > 0  # paid, estimated
    # Closed at the verdict, not after its first chunk: the chosen model never waits for the fast one.
    assert cancelled[0].usage.output_tokens == 0
    assert sorted(a.model_id for a in result.attempts) == ["judge", "large", "mini"]
    assert router.budgets is not None
    status = await router.budgets.status(["agent:anonymous"])
    assert status.limits[0].spent_usd == pytest.approx(result.cost_usd)  # the wasted stream is charged
    await router.aclose()


async def test_a_speculative_stream_whose_fast_call_fails_is_answered_by_the_chain(
    server: LocalOpenAIServer,
) -> None:
    server.script("mini", Fail(400))  # refused outright: no fallback inside the speculative call
    server.script("judge", Reply("0"))
    router = _router(server, speculative=True)
    stream = router.astream(PROMPT)
    text = "".join([event.text async for event in stream if isinstance(event, TextDelta)])
    assert text and stream.result is not None and stream.result.model_id == "mini"
    assert stream.result.decision.reasons[-1].startswith("speculative: mini's stream failed (")
    assert [a.model_id for a in stream.result.attempts].count("mini") == 2
    await router.aclose()


async def test_a_speculative_stream_that_broke_before_the_verdict_shows_the_caller_only_the_chains_answer(
    server: LocalOpenAIServer,
) -> None:
    server.script("mini", CutStream(after_chunks=2))  # breaks at once, long before the verdict
    server.script("judge", Delay(0.5, Reply("0")))
    router = _router(server, speculative=True)
    stream = router.astream(PROMPT)
    text = "".join([event.text async for event in stream if isinstance(event, TextDelta)])
    result = stream.result
    assert result is not None and text == result.response.text  # no broken half-answer before it
    assert result.decision.reasons[-1].startswith("speculative: mini's stream failed (ProviderError)")
    assert [(a.model_id, a.ok) for a in result.attempts][:2] == [("judge", True), ("mini", False)]
    await router.aclose()


def test_the_classifier_is_configured_from_gearshift_toml() -> None:
    data = {
        "routing": {
            "policy": "classifier",
            "classifier": {"model": "gpt-5-nano", "labels": {"easy": 1, "hard": 3}},
        }
    }
    router = Router.from_config(GearshiftConfig.from_dict(data))
    assert isinstance(router.policy, ClassifierPolicy)
    assert router.policy.parse("Easy.") == 1 and router.policy.parse("HARD") == 3
    assert router.policy.parse("medium") is None
    with pytest.raises(ConfigError, match="unknown model id 'gpt-17'") as unknown:
        Router.from_config(
            GearshiftConfig.from_dict(
                {"routing": {"policy": "classifier", "classifier": {"model": "gpt-17"}}}
            )
        )
    assert unknown.value.key == "routing.classifier.model"
    with pytest.raises(ConfigError, match=r"must contain \{request\}") as bad:
        ClassifierConfig.from_config({"model": "m", "prompt": "Classify."}, source="gearshift.toml")
    assert bad.value.key == "routing.classifier.prompt"
    with pytest.raises(ConfigError, match=r"needs a \[routing\.classifier\] table"):
        GearshiftConfig.from_dict({"routing": {"policy": "classifier"}})


async def test_a_task_map_in_front_of_the_classifier_still_lets_it_classify(
    server: LocalOpenAIServer,
) -> None:
    server.script("judge", Reply("1"))
    classifier = _router(server).policy
    rules = RulesPolicy.from_config(task_rules({"translate": "mini"}), fallback=classifier, registry=REGISTRY)
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    router = Router(REGISTRY, policy=rules, providers=[provider])
    answer = await router.acomplete(PROMPT)
    assert answer.model_id == "large"
    assert answer.decision.reasons[0] == "no rule matched: the classifier policy decides"
    assert answer.decision.reasons[1].startswith("classifier judge (")
    await router.aclose()


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_speculative_call_kept_on_the_fast_tier_is_shadowed(
    server: LocalOpenAIServer, tmp_path: Path, streamed: bool
) -> None:
    server.script("judge", Reply("0"))
    server.script("mini", Reply("Hamlet avenges his father and dies."))
    classified = _router(server, speculative=True)
    router = Router(
        REGISTRY,
        policy=classified.policy,
        providers=list(classified.providers.values()),
        decision_log=open_decision_log(tmp_path / "log.jsonl", include_prompts=True),
        shadow=ShadowConfig(share=1.0, judge="heuristic"),
    )
    if streamed:
        stream = router.astream(PROMPT, StepContext(agent_id="writer"))
        async for _ in stream:
            pass
        result = stream.result
    else:
        result = await router.acomplete(PROMPT, StepContext(agent_id="writer"))
    assert result is not None and result.model_id == "mini"
    assert result.decision.reasons[-1].startswith("speculative: tier 0 is the fast model's")
    await router.aclose()
    (shadow,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "shadow"]
    assert shadow["request_id"] == result.request_id and shadow["agent_id"] == "writer"
    assert set(shadow["outcomes"]) == {"mini", "large"}  # the reference (top tier) answered it too
    assert shadow["prompt"] == [{"role": "user", "content": PROMPT}]


async def test_a_named_shadow_reference_follows_the_callers_call_not_the_classification_call(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # With a model id as the reference, every call below its tier is eligible: the classification
    # call ("judge", tier 0) must not become a shadow pair, nor must a call whose model the caller forced.
    server.script("judge", Reply("0"))
    classified = _router(server)
    router = Router(
        REGISTRY,
        policy=classified.policy,
        providers=list(classified.providers.values()),
        decision_log=open_decision_log(tmp_path / "log.jsonl", include_prompts=True),
        shadow=ShadowConfig(share=1.0, judge="heuristic", reference="large"),
    )
    result = await router.acomplete(PROMPT, StepContext(agent_id="writer"))
    forced = StepContext(agent_id="writer", hints=CallerHints(force_model="mini"))
    await router.acomplete("Name one prime number.", forced)
    assert result.model_id == "mini"
    await router.aclose()
    shadows = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "shadow"]
    assert [s["request_id"] for s in shadows] == [result.request_id]
    assert shadows[0]["prompt"] == [{"role": "user", "content": PROMPT}]


async def test_no_classification_is_bought_when_the_caller_leaves_one_model_or_one_tier(
    server: LocalOpenAIServer,
) -> None:
    router = _router(server)
    forced = await router.acomplete(PROMPT, StepContext(hints=CallerHints(force_model="mini")))
    top = await router.acomplete(PROMPT, StepContext(hints=CallerHints(min_tier=1)))
    assert _models(server) == ["mini", "large"]  # the judge was never asked
    assert forced.decision.reasons[0].startswith("the caller forced model 'mini': no classification needed")
    assert top.model_id == "large"
    assert top.decision.reasons[0] == "tier 1 is the only one the caller allows: no classification needed"
    server.script("judge", Reply("1"))
    both = await router.acomplete(PROMPT, StepContext(hints=CallerHints(max_tier=1)))
    assert both.model_id == "large" and _models(server)[2:] == ["judge", "large"]  # two tiers: it asks
    await router.aclose()
