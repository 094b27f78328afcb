"""Several LangGraph agents sharing one `RoutedChatModel`: each agent's calls are its own.

A supervisor graph runs named `create_agent` agents as its nodes, often over one chat model. LangChain
names the agent calling the model in the run metadata (`lc_agent_name`); the spend of each call counts
against that agent (`agent:<name>`) unless the caller or the model names another one. The local
server's models answer through the real `openai` SDK; the ledger is real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool, ToolException, tool
from langgraph.graph import END, START, MessagesState, StateGraph

from gearshift import Router, read_records
from gearshift._bridge import run_sync
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

THREAD = {"configurable": {"thread_id": "t-team"}}
KEYS = ("agent:researcher", "agent:pricer", "run:t-team")


@tool
def stock(sku: str) -> str:
    """Units of a product in stock."""
    return f"12 units of {sku}"


@tool
def price(sku: str) -> str:
    """Price of one unit of a product."""
    return f"$3 for one {sku}"


@tool
def lookup(sku: str) -> str:
    """Where a product is kept."""
    raise ToolException(f"the warehouse of {sku} is offline")


lookup.handle_tool_error = True  # a failed lookup becomes a ToolMessage with status="error"


def _team(model: RoutedChatModel, research: BaseTool = stock) -> Any:
    """A supervisor graph: the researcher answers first, then the pricer; both over `model`."""
    graph = StateGraph(MessagesState)
    graph.add_node("researcher", create_agent(model, [research], name="researcher"))
    graph.add_node("pricer", create_agent(model, [price], name="pricer"))
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", "pricer")
    graph.add_edge("pricer", END)
    return graph.compile()


def _spent(ledger: BudgetLedger) -> dict[str, float]:
    return {usage.key: usage.spent_usd for usage in run_sync(ledger.usage(KEYS))}


def test_each_named_agent_sharing_one_model_is_charged_for_its_own_calls(
    make_router: Callable[..., Router],
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="per-agent", key="agent:*", usd=1.0)])
    team = _team(RoutedChatModel(router=make_router(budgets=ledger)))
    state = team.invoke({"messages": [HumanMessage("Stock and price of SKU-9?")]}, THREAD)
    assert [m.name for m in state["messages"] if m.type == "ai"] == ["researcher", "researcher", "pricer"]
    spent = _spent(ledger)
    assert spent["agent:researcher"] > 0
    assert spent["agent:pricer"] > 0
    assert spent["run:t-team"] == pytest.approx(spent["agent:researcher"] + spent["agent:pricer"])


def test_the_next_agent_reads_which_agent_said_what_as_chatopenai_sends_it(
    server: LocalOpenAIServer, router: Router
) -> None:
    _team(RoutedChatModel(router=router)).invoke({"messages": [HumanMessage("Stock and price of SKU-9?")]})
    sent = server.requests[-1].body["messages"]  # the pricer's first step
    assert [m.get("name") for m in sent if m["role"] == "assistant"] == ["researcher", "researcher"]


def test_an_agent_starts_its_own_turn_where_another_agent_handed_over(
    server: LocalOpenAIServer, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    # The researcher's lookups fail twice, so its third step is handed up to `large`. The pricer then
    # starts a task of its own: the researcher's failures are no streak of the pricer's, and it acts.
    log = tmp_path / "log.jsonl"
    team = _team(RoutedChatModel(router=make_router(decision_log=open_decision_log(log))), lookup)
    server.script("small", *(Reply(tool_calls=[("lookup", {"sku": sku})]) for sku in ("a", "b")))
    server.script("large", Reply(text="The warehouse is offline."))
    state = team.invoke({"messages": [HumanMessage("Where is SKU-9 and what does it cost?")]}, THREAD)
    answers = [(m.name, m.response_metadata["model_name"]) for m in state["messages"] if m.type == "ai"]
    assert answers == [
        ("researcher", "small"),
        ("researcher", "small"),
        ("researcher", "large"),
        ("pricer", "small"),
    ]
    decisions = [r for r in read_records(log) if r["kind"] == "decision"]
    assert (decisions[-1]["agent_id"], decisions[-1]["step_type"]) == ("pricer", "act")
