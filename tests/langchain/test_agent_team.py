"""Several LangGraph agents sharing one `RoutedChatModel`: each agent's calls are its own.

A supervisor graph runs named `create_agent` agents as its nodes, often over one chat model. LangChain
names the agent calling the model in the run metadata (`lc_agent_name`); the spend of each call counts
against that agent (`agent:<name>`) unless the caller or the model names another one. The local
server's models answer through the real `openai` SDK; the ledger is real.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

from gearshift import Router
from gearshift._bridge import run_sync
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import LocalOpenAIServer
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


def _team(model: RoutedChatModel) -> Any:
    """A supervisor graph: the researcher answers first, then the pricer; both over `model`."""
    graph = StateGraph(MessagesState)
    graph.add_node("researcher", create_agent(model, [stock], name="researcher"))
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
