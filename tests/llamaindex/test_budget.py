"""Budgets through `RoutedLLM`: spend per agent and per run, hard limits refusing calls, and pacing
per user turn."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llamaindex_support import MakeRouter, Observed

from gearshift import BudgetExceeded, InvalidRequestError, ScorerConfig, SignalScorer
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import LocalOpenAIServer
from gearshift_llamaindex import RoutedLLM, run_scope

# LlamaIndex's workflows look their steps up with inspect.getmembers on the agent, a pydantic model,
# which touches pydantic's deprecated attributes: noise from the framework, not from this package.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

USER = [ChatMessage(role="user", content="Say hello to the team")]


def lookup_order(order_id: str) -> str:
    """The items and payment state of an order."""
    return f"Order {order_id}: 2 x SKU-9, paid"


async def test_spend_is_kept_per_agent_and_per_run_for_concurrent_runs(make_router: MakeRouter) -> None:
    ledger = BudgetLedger(
        MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0), BudgetLimit(key="run:*", usd=1.0)]
    )
    llm = RoutedLLM(make_router(budgets=ledger), agent_id="writer")  # one LLM shared by both runs

    async def run(run_id: str, calls: int) -> float:
        cost = 0.0
        with run_scope(run_id=run_id):
            for _ in range(calls):
                cost += (await llm.achat(USER)).raw["cost_usd"]
        return cost

    cost_a, cost_b = await asyncio.gather(run("a", 2), run("b", 1))

    async def spent(key: str) -> float:
        (limit,) = (await ledger.status([key])).limits
        return limit.spent_usd

    assert await spent("run:a") == pytest.approx(cost_a)
    assert await spent("run:b") == pytest.approx(cost_b)
    assert await spent("agent:writer") == pytest.approx(cost_a + cost_b)
    assert cost_a > cost_b > 0


async def test_a_hard_limit_refuses_calls_with_budget_exceeded(
    make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    limit = 0.0001
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="per-run", key="run:*", usd=limit)])
    llm = RoutedLLM(make_router(budgets=ledger), run_id="tight", max_tokens=50)
    answered = 0
    with pytest.raises(BudgetExceeded) as refused:
        for _ in range(50):
            await llm.achat(USER)
            answered += 1
    assert answered >= 1 and refused.value.limit_name == "per-run"
    assert len(server.requests) == answered  # the refused call never reached a model
    (status,) = (await ledger.status(["run:tight"])).limits
    assert status.spent_usd == pytest.approx(observed.spent())
    assert status.spent_usd <= limit
    assert status.reserved_usd == 0  # nothing held for the refused call

    # Every entry point surfaces the same refusal.
    with pytest.raises(BudgetExceeded):
        llm.chat(USER)
    with pytest.raises(BudgetExceeded):
        _ = [chunk async for chunk in await llm.astream_chat(USER)]
    with pytest.raises(BudgetExceeded):
        list(llm.stream_complete("hello"))
    agent = FunctionAgent(tools=[lookup_order], llm=llm)
    with pytest.raises(BudgetExceeded):
        await agent.run("Where is order A-17?")
    assert len(server.requests) == answered


async def test_an_llm_without_an_agent_is_charged_to_the_default_agent(make_router: MakeRouter) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="everyone", key="*", usd=1.0)])
    llm = RoutedLLM(make_router(budgets=ledger))
    cost = (await llm.achat(USER)).raw["cost_usd"]
    (usage,) = await ledger.usage(["agent:anonymous"])
    assert usage.spent_usd == pytest.approx(cost) and cost > 0


async def test_a_refusal_says_which_agent_thread_and_step_it_stopped_as_langchain_does(
    make_router: MakeRouter,
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="per-run", key="run:*", usd=0.0)])
    llm = RoutedLLM(make_router(budgets=ledger), agent_id="writer", run_id="t-1", max_tokens=50)
    stopped = r"^agent 'writer' in thread 't-1' at step 1 was stopped by its budget: budget 'per-run' on key"
    with pytest.raises(BudgetExceeded, match=stopped) as refused:
        await llm.achat(USER)
    assert refused.value.limit_name == "per-run"  # the ledger's own refusal, only worded for the agent
    with pytest.raises(BudgetExceeded, match=stopped):
        llm.chat(USER)
    with pytest.raises(BudgetExceeded, match=stopped):
        _ = [chunk async for chunk in await llm.astream_chat(USER)]
    with pytest.raises(BudgetExceeded, match=stopped):
        list(llm.stream_complete("hello"))
    with pytest.raises(BudgetExceeded, match=r"^agent 'writer' in thread 't-1' at step 1 was stopped"):
        await FunctionAgent(tools=[lookup_order], llm=llm).run("Where is order A-17?")


async def test_a_later_user_turn_is_paced_over_its_own_steps(
    make_router: MakeRouter, observed: Observed
) -> None:
    # Two steps expected per turn and $0.006 for the run: a step may take $0.003, less than a hard
    # proof costs on `large` (~$0.0043 for 512 output tokens), so it goes to `small`. The chat's
    # earlier turn does not make this turn's first step the run's last one.
    hard = (
        "Prove rigorously that there are infinitely many primes p with p = 3 mod 4, then derive an "
        "explicit bound on the n-th such prime. Reason step by step, justify every lemma, and check "
        "each inequality carefully: compute the integral of log(x)/x and analyze the asymptotic "
        "complexity of the sieve you use, with a formal proof of correctness for each step."
    )
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=0.006)])
    markers = SignalScorer(ScorerConfig(math_weight=0.6, reasoning_weight=0.6))  # hard proofs: tier 2
    llm = RoutedLLM(make_router(budgets=ledger, policy=markers), run_id="chat", expected_steps=2)
    chat = [
        ChatMessage(role="user", content=hard),
        ChatMessage(role="assistant", content="Euclid's argument, adapted: see below."),
        ChatMessage(role="user", content=f"Now for p = 1 mod 4. {hard}"),
    ]

    await llm.achat(chat)

    assert observed.served() == ["small"]
    (decision,) = observed.records("decision")
    assert any("for ~2 more steps" in reason for reason in decision["reasons"]), decision["reasons"]


async def test_budget_keys_given_as_one_string_are_refused_not_split_into_letters(
    make_router: MakeRouter, observed: Observed
) -> None:
    # run_scope(budget_keys="team:search") charged the spend to the keys 't', 'e', 'a', 'm', ':', ...
    # and no limit on team:search ever saw it; so did a call's budget_keys="team:search".
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="team:*", usd=1.0)])
    llm = RoutedLLM(make_router(budgets=ledger))
    with pytest.raises(InvalidRequestError, match=r"run_scope: budget_keys must be a list of keys"):
        run_scope(budget_keys="team:search").__enter__()  # refused as the scope opens
    with pytest.raises(InvalidRequestError, match=r"budget_keys must be a list of keys.*'team:search'"):
        await llm.achat(USER, budget_keys="team:search")
    assert observed.server.requests == []
    with run_scope(budget_keys=["team:search"]):
        await llm.achat(USER, budget_keys=("team:east",))
    assert set(await ledger.keys()) == {"agent:anonymous", "team:search", "team:east"}
