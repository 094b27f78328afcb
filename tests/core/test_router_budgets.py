"""The router keeps the budget: reserve before, commit after, release on failure, pace the choice."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from gearshift import (
    BudgetExceeded,
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    ScorerConfig,
    SignalScorer,
    StepContext,
    TextDelta,
    read_records,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.budgets._sqlite import SQLiteStore
from gearshift.providers import OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import Delay, Fail, LocalOpenAIServer, Reply

KEY = "sk-budget-router-test-8d2e"
HARD = (
    "Prove that the sum of the first n odd numbers is n squared, then derive a closed form for the sum "
    "of the first n squares step by step, and analyse the complexity of computing it."
)
# A scorer that weighs math and reasoning markers (off by default), so that HARD goes to the top tier.
MARKERS = ScorerConfig(math_weight=0.6, reasoning_weight=0.6)


def _spec(model_id: str, tier: int, price: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="local",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price * 4),
    )


REGISTRY = ModelRegistry([_spec("small", 1, 0.5), _spec("large", 2, 20.0)])


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        yield server


@pytest.fixture
async def provider(server: LocalOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(name="local", api_key=KEY, base_url=server.base_url, timeout=5.0)
    yield provider
    await provider.aclose()


def _router(provider: OpenAIProvider, *limits: BudgetLimit, **options: object) -> Router:
    ledger = BudgetLedger(MemoryStore(), limits)
    return Router(REGISTRY, policy=SignalScorer(MARKERS), providers=[provider], budgets=ledger, **options)  # type: ignore[arg-type]


def _request(text: str = "What is the capital of France?") -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),), max_tokens=64)


async def _spent(router: Router, key: str) -> float:
    assert router.budgets is not None
    status = await router.budgets.status([key])
    return sum(limit.spent_usd for limit in status.limits)


async def test_the_spend_in_the_ledger_is_the_sum_of_the_attempts_costs(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider, BudgetLimit(key="run:*", usd=10.0))
    context = StepContext(agent_id="a1", run_id="r1")
    results = [await router.acomplete(_request(), context) for _ in range(3)]
    stream = router.astream(_request(), context)
    assert "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert stream.result is not None

    costs = sum(r.cost_usd for r in results) + stream.result.cost_usd
    assert await _spent(router, "run:r1") == pytest.approx(costs)
    status = await router.budgets.status(["run:r1"])  # type: ignore[union-attr]
    assert status.limits[0].reserved_usd == 0  # every reservation was settled


async def test_a_failed_attempt_releases_its_reservation_and_only_the_answer_is_charged(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    server.script("small", Fail(status=503))
    router = _router(provider, BudgetLimit(key="run:*", usd=10.0))
    result = await router.acomplete(_request(), StepContext(run_id="r2"))
    assert [a.ok for a in result.attempts] == [False, True]
    assert await _spent(router, "run:r2") == pytest.approx(result.response.cost_usd)
    status = await router.budgets.status(["run:r2"])  # type: ignore[union-attr]
    assert status.limits[0].reserved_usd == 0


async def test_a_hard_limit_refuses_before_any_model_is_called(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider, BudgetLimit(name="tiny", key="agent:*", usd=0.00001))
    with pytest.raises(BudgetExceeded) as refused:
        await router.acomplete(_request(), StepContext(agent_id="broke"))
    assert server.requests == []  # nothing was sent, so nothing can be billed
    assert "tiny" in str(refused.value)
    assert await _spent(router, "agent:broke") == 0


async def test_a_refusal_names_its_record_in_the_decision_log(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path
) -> None:
    # The refusal was logged (limit, key, spent) under a request id the refused caller never saw.
    log = open_decision_log(tmp_path / "log.jsonl")
    router = _router(provider, BudgetLimit(name="tiny", key="agent:*", usd=0.00001), decision_log=log)
    with pytest.raises(BudgetExceeded) as refused:
        await router.acomplete(_request(), StepContext(agent_id="broke"))
    router.close()
    named = [r for r in read_records(tmp_path / "log.jsonl") if r["request_id"] == refused.value.request_id]
    assert refused.value.request_id is not None
    assert {r["kind"] for r in named} == {"decision", "budget_refusal"}, named


@pytest.mark.parametrize("max_tokens", [64, None])
async def test_a_refusal_advises_lowering_max_tokens_only_when_the_call_set_it(
    server: LocalOpenAIServer, provider: OpenAIProvider, max_tokens: int | None
) -> None:
    # A call that sets no max_tokens already has its output capped to what the budget allows: telling
    # its caller to lower a setting it never gave sent them looking for it.
    router = _router(provider, BudgetLimit(name="tiny", key="agent:*", usd=0.00001))
    request = ChatRequest(messages=(Message.user("What is the capital of France?"),), max_tokens=max_tokens)
    with pytest.raises(BudgetExceeded) as refused:
        await router.acomplete(request, StepContext(agent_id="broke"))
    advice = str(refused.value).split("To go on: ", 1)[1]
    if max_tokens is None:
        assert advice.startswith("shorten the prompt, route to a cheaper model or raise the limit"), advice
    else:
        assert advice.startswith("lower max_tokens, route to a cheaper model or raise the limit"), advice


async def test_parallel_calls_never_take_a_hard_limit_past_its_cap(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    limit = 0.0005
    router = _router(provider, BudgetLimit(key="run:*", usd=limit))
    context = StepContext(run_id="parallel")

    async def one() -> float | None:
        try:
            return (await router.acomplete(_request(), context)).cost_usd
        except BudgetExceeded:
            return None

    outcomes = await asyncio.gather(*(one() for _ in range(40)))
    answered = [c for c in outcomes if c is not None]
    assert answered and None in outcomes  # some fit, the rest were refused
    spent = await _spent(router, "run:parallel")
    assert spent == pytest.approx(sum(answered))
    assert spent <= limit


async def test_a_downgrade_budget_moves_a_step_to_a_cheaper_model_and_says_so(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider, BudgetLimit(key="run:*", usd=0.01, mode="downgrade"))
    unbudgeted = router.decide(_request(HARD), StepContext())
    assert unbudgeted.model == "large"

    context = StepContext(run_id="paced", step_index=0, expected_steps=50)
    decision = await router.adecide(_request(HARD), context)
    assert decision.model == "small"
    assert decision.budget_changed
    assert any(reason.startswith("budget:") for reason in decision.reasons)

    result = await router.acomplete(_request(HARD), context)
    assert result.model_id == "small" and result.decision.budget_changed


async def test_a_budgeted_stream_decides_once_iteration_starts(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider, BudgetLimit(key="run:*", usd=1.0))
    stream = router.astream(_request(), StepContext(run_id="s"))
    assert stream.decision is None
    first = await stream.__anext__()
    assert stream.decision is not None and stream.decision.model == "small"
    assert isinstance(first, TextDelta)
    async for _ in stream:
        pass
    assert stream.result is not None


async def test_an_escalation_is_charged_to_the_same_run(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    server.script("small", Reply(tool_calls=[("escalate", {"reason": "needs the large model"})]))
    router = _router(provider, BudgetLimit(key="run:*", usd=10.0), self_escalation=True)
    result = await router.acomplete(_request(), StepContext(run_id="esc"))
    assert result.model_id == "large"
    assert await _spent(router, "run:esc") == pytest.approx(result.cost_usd)


async def test_steps_without_an_agent_are_charged_to_the_default_one_and_only_its_limits_apply(
    server: LocalOpenAIServer, provider: OpenAIProvider
) -> None:
    router = _router(provider, BudgetLimit(key="run:*", usd=0.0))
    result = await router.acomplete(_request())  # no agent, no run: charged to agent:anonymous
    assert result.model_id == "small"
    assert router.budgets is not None
    (usage,) = await router.budgets.usage(["agent:anonymous"])
    assert usage.spent_usd == pytest.approx(result.cost_usd)


@pytest.mark.parametrize("closing", ["plainly", "cancelled"])
async def test_a_router_closed_as_a_cancelled_call_settles_waits_for_the_settlement(
    server: LocalOpenAIServer, tmp_path: Path, closing: str
) -> None:
    # A server shutting down (the MCP server on SIGTERM, under anyio) cancels a call, which then
    # settles, and closes the router right away, perhaps under the same cancellation. The router
    # closed the ledger before the settlement had written: the reservation stayed held in the store,
    # the spend went to the journal until some later process replayed it.
    server.script("large", Delay(30))
    store = tmp_path / "budgets.db"
    provider = OpenAIProvider(name="local", api_key=KEY, base_url=server.base_url, timeout=60.0)
    ledger = BudgetLedger(SQLiteStore(store), [BudgetLimit(key="run:*", usd=10.0)])
    router = Router(REGISTRY, policy=SignalScorer(MARKERS), providers=[provider], budgets=ledger)
    call = asyncio.ensure_future(router.acomplete(_request(HARD), StepContext(run_id="r1")))
    while not server.requests:  # noqa: ASYNC110 (a server thread's list)
        await asyncio.sleep(0.01)
    call.cancel()
    await asyncio.sleep(0)  # the call is cancelled and starts its settlement
    if closing == "plainly":
        await router.aclose()
    else:
        with anyio.CancelScope() as shutdown:
            shutdown.cancel()
            await router.aclose()
    with pytest.raises(asyncio.CancelledError):
        await call
    with contextlib.closing(sqlite3.connect(store)) as db:
        held, spends, commits = db.execute(
            "SELECT (SELECT COUNT(*) FROM reservations), (SELECT COUNT(*) FROM spends), "
            "(SELECT COUNT(*) FROM commits)"
        ).fetchone()
    assert (held, commits) == (0, 1)
    assert spends > 0  # the input the provider was sent is charged


async def test_a_stream_the_caller_stops_reading_is_charged_what_it_produced(
    provider: OpenAIProvider,
) -> None:
    router = _router(provider, BudgetLimit(key="run:*", usd=1.0))
    stream = router.astream(_request(), StepContext(run_id="quit"))
    async for event in stream:
        if isinstance(event, TextDelta):
            break  # the caller has what it wanted and drops the stream without closing it
    del stream
    for _ in range(50):  # the loop's finalizer closes the abandoned generator, which settles
        await asyncio.sleep(0.01)
        assert router.budgets is not None
        (usage,) = await router.budgets.usage(["run:quit"])
        if usage.reserved_usd == 0:
            break
    assert usage.reserved_usd == 0 and usage.spent_usd > 0


def test_a_sync_stream_the_caller_stops_reading_is_charged_what_it_produced(provider: OpenAIProvider) -> None:
    router = _router(provider, BudgetLimit(key="run:*", usd=1.0))
    try:
        for event in router.stream(_request(), StepContext(run_id="quit")):
            if isinstance(event, TextDelta):
                break
        assert router.budgets is not None
        (usage,) = asyncio.run(router.budgets.usage(["run:quit"]))
    finally:
        router.close()
    assert usage.reserved_usd == 0 and usage.spent_usd > 0


async def test_an_answer_cancelled_while_its_cost_is_committed_is_in_the_decision_log(
    server: LocalOpenAIServer, provider: OpenAIProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer came, its commit was queued to SQLite's thread, and the caller gave up then (Ctrl-C on
    # `gearshift batch`, 3 interrupted runs in 40): the ledger charged it, but the attempt was only
    # logged after the commit, so the decision log had no record of a call that was paid for.
    log = open_decision_log(tmp_path / "log.jsonl")
    ledger = BudgetLedger(SQLiteStore(tmp_path / "budgets.db"), [BudgetLimit(key="run:*", usd=10.0)])
    router = Router(
        REGISTRY, policy=SignalScorer(MARKERS), providers=[provider], budgets=ledger, decision_log=log
    )
    commit = ledger.commit

    async def commit_as_the_caller_gives_up(*args: object, **kwargs: object) -> None:
        call.cancel()  # lands at the commit's wait for SQLite's thread
        await commit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "commit", commit_as_the_caller_gives_up)
    call = asyncio.ensure_future(router.acomplete(_request(), StepContext(run_id="r1")))
    with pytest.raises(asyncio.CancelledError):
        await call
    spent = await _spent(router, "run:r1")
    await router.aclose()
    attempts = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "attempt"]
    assert spent > 0
    assert [(a["ok"], a["cost_usd"]) for a in attempts] == [(True, pytest.approx(spent))]
