"""Budgets through the LangChain adapter: kept per agent and per thread, and a hard limit stops the agent."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from gearshift import BudgetExceeded, Router, open_decision_log, read_records
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

TASK = "Look up the three latest releases and compare them."


@tool
def lookup(name: str) -> str:
    """Look up a release by name."""
    return f"{name}: released, 12 changes"


def _agent(router: Router) -> Any:
    return create_agent(model=RoutedChatModel(router=router), tools=[lookup])


def _config(thread: str, agent: str = "researcher") -> dict[str, dict[str, str]]:
    return {"configurable": {"thread_id": thread}, "metadata": {"agent_id": agent}}


@pytest.mark.async_run_config
async def test_a_hard_limit_refuses_the_first_call_with_a_message_naming_agent_thread_and_limit(
    make_router: Callable[..., Router],
) -> None:
    # $0.00003 pays for the prompt and a few words: not for a useful answer on any model.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="thread cap", key="run:*", usd=0.000_03)])
    agent = _agent(make_router(budgets=ledger))

    with pytest.raises(BudgetExceeded) as refused:
        await agent.ainvoke({"messages": [HumanMessage(TASK)]}, _config("t-1"))

    message = str(refused.value)
    assert message.startswith(
        "agent 'researcher' in thread 't-1' at step 1 (node 'model') was stopped by its budget: "
        "budget 'thread cap' on key 'run:t-1' refuses this call: limit $0.00003"
    )
    assert "To go on:" in message
    assert (refused.value.limit_name, refused.value.key, refused.value.spent) == (
        "thread cap",
        "run:t-1",
        0.0,
    )
    (usage,) = await ledger.usage(["run:t-1"])
    assert usage.spent_usd == usage.reserved_usd == 0.0  # a refused call costs nothing


async def test_a_stream_is_refused_the_same_way(make_router: Callable[..., Router]) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="agent cap", key="agent:*", usd=0.000_03)])
    model = RoutedChatModel(router=make_router(budgets=ledger), agent_id="streamer")
    with pytest.raises(BudgetExceeded, match=r"^agent 'streamer' at step 1 was stopped by its budget"):
        async for _ in model.astream("hello"):
            pass


@pytest.mark.async_run_config
async def test_a_run_is_stopped_mid_way_once_what_is_left_cannot_pay_for_a_step(
    server: LocalOpenAIServer, make_router: Callable[..., Router]
) -> None:
    # Each step reserves up to ~$0.0003 (512 output tokens on `small`, fewer as the budget runs low)
    # and really costs a tenth of that: a $0.0004 limit lets steps through until what is left cannot
    # pay for even a short answer, then refuses.
    server.script("small", *[Reply(tool_calls=[("lookup", {"name": f"v{i}"})]) for i in range(20)])
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="thread cap", key="run:*", usd=0.0004)])
    agent = _agent(make_router(budgets=ledger))

    done: list[AIMessage] = []
    with pytest.raises(BudgetExceeded) as refused:
        async for update in agent.astream(
            {"messages": [HumanMessage(TASK)]}, _config("t-2"), stream_mode="updates"
        ):
            done.extend(m for m in update.get("model", {}).get("messages", []) if isinstance(m, AIMessage))

    assert len(done) >= 2
    assert f"at step {len(done) + 1} (node 'model')" in str(refused.value)
    (usage,) = await ledger.usage(["run:t-2"])
    assert usage.spent_usd == pytest.approx(sum(m.response_metadata["gearshift"]["cost_usd"] for m in done))
    assert usage.reserved_usd == 0.0


@pytest.mark.async_run_config
async def test_an_agent_limit_spans_its_threads_and_each_thread_keeps_its_own_spend(
    make_router: Callable[..., Router],
) -> None:
    store = MemoryStore()  # one store: the spend of every thread and agent, whichever ledger reads it
    unlimited = _agent(make_router(budgets=BudgetLedger(store)))
    first = await unlimited.ainvoke({"messages": [HumanMessage(TASK)]}, _config("t-a"))
    spent = sum(
        m.response_metadata["gearshift"]["cost_usd"] for m in first["messages"] if isinstance(m, AIMessage)
    )

    # The researcher may spend a little more than thread t-a cost: not enough for a useful answer.
    capped = BudgetLedger(store, [BudgetLimit(name="agent cap", key="agent:researcher", usd=spent + 0.00002)])
    agent = _agent(make_router(budgets=capped))
    with pytest.raises(
        BudgetExceeded, match=r"^agent 'researcher' in thread 't-b' at step 1 .* key 'agent:researcher'"
    ):
        await agent.ainvoke({"messages": [HumanMessage(TASK)]}, _config("t-b"))
    other = await agent.ainvoke({"messages": [HumanMessage(TASK)]}, _config("t-c", agent="editor"))
    assert isinstance(other["messages"][-1], AIMessage)  # another agent is not held by that limit
    spent_other = sum(
        m.response_metadata["gearshift"]["cost_usd"] for m in other["messages"] if isinstance(m, AIMessage)
    )

    keys = ["run:t-a", "run:t-b", "agent:researcher", "run:t-c", "agent:editor"]
    usage = {u.key: u.spent_usd for u in await capped.usage(keys)}
    assert usage == {
        "run:t-a": pytest.approx(spent),
        "run:t-b": 0.0,
        "agent:researcher": pytest.approx(spent),
        "run:t-c": pytest.approx(spent_other),
        "agent:editor": pytest.approx(spent_other),
    }


async def test_a_model_without_an_agent_is_charged_to_the_default_agent(
    make_router: Callable[..., Router],
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="everyone", key="*", usd=1.0)])
    model = RoutedChatModel(router=make_router(budgets=ledger))
    answer = await model.ainvoke([HumanMessage("Say hello")])
    (usage,) = await ledger.usage(["agent:anonymous"])
    cost = answer.response_metadata["gearshift"]["cost_usd"]
    assert usage.spent_usd == pytest.approx(cost) and cost > 0


class _ReaderGaveUp(Exception):
    """The application reading the stream failed on a chunk."""


@pytest.mark.parametrize("held", [False, True], ids=["as it comes", "held back"])
@pytest.mark.parametrize("how", ["break", "raise", "sync break"])
async def test_a_stream_its_reader_leaves_early_is_charged_once_and_holds_nothing(
    make_router: Callable[..., Router], server: LocalOpenAIServer, tmp_path: Path, how: str, held: bool
) -> None:
    # With escalation on offer the core holds a lower tier's answer back until it is done: the reader
    # leaves a finished call. Without, it leaves one still running, charged at gearshift's estimate.
    server.script("small", Reply("word " * 200))
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    log = tmp_path / "log.jsonl"
    router = make_router(budgets=ledger, decision_log=open_decision_log(log))
    model = RoutedChatModel(router=router, agent_id="reader", self_escalation=held)
    if how == "sync break":
        for _ in model.stream("hello"):
            break
    else:
        with pytest.raises(_ReaderGaveUp) if how == "raise" else nullcontext():
            async for _ in model.astream("hello"):
                if how == "raise":
                    raise _ReaderGaveUp
                break
    await router.aclose()
    (usage,) = await ledger.usage(["agent:reader"])
    (attempt,) = [r for r in read_records(log) if r["kind"] == "attempt"]
    assert attempt["ok"] is held and attempt["cancelled"] is not held and attempt["output_tokens"] > 0
    assert usage.reserved_usd == 0 and usage.spent_usd == pytest.approx(attempt["cost_usd"])
