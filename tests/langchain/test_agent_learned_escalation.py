"""A LangChain agent (`create_agent`) whose router applies the learned escalation on every step.

The scripted small model keeps calling a failing search with the same arguments; the learned
escalation (a real artifact, `tests/artifacts/make_escalation.py`) hands the thread up to the large
model, which it keeps for the rest of the run. The ledger holds exactly what every attempt cost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import ToolException, tool

from gearshift import ModelRegistry, Router
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.escalation import CheapestPolicy, EscalationModel
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "escalation.json"
THREAD = {"configurable": {"thread_id": "order-7"}, "metadata": {"agent_id": "shop"}}


@tool
def search(query: str) -> str:
    """Search the order system."""
    if query == "order 7":
        raise ToolException("the order service timed out")
    return f"{query}: ships tomorrow"


search.handle_tool_error = True  # a failed search becomes a ToolMessage with status="error"


@pytest.mark.async_run_config
async def test_a_failing_thread_is_handed_up_by_the_learned_escalation_and_stays_up(
    server: LocalOpenAIServer, make_router: Callable[..., Router], registry: ModelRegistry
) -> None:
    model = EscalationModel.load(ARTIFACT)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=5.0)])
    router = make_router(policy=CheapestPolicy(), budgets=ledger, escalation=model)
    server.script("small", *[Reply(tool_calls=[("search", {"query": "order 7"})])] * 3)
    server.script("large", Reply(tool_calls=[("search", {"query": "order 7 status"})]))
    # The large model's last step is unscripted: the simulated model sums up the tool results.
    agent = create_agent(model=RoutedChatModel(router=router, self_escalation=False), tools=[search])

    result = await agent.ainvoke({"messages": [HumanMessage("When does order 7 ship?")]}, THREAD)

    ai = [m for m in result["messages"] if isinstance(m, AIMessage)]
    routed = [m.response_metadata["gearshift"] for m in ai]
    assert [r["model_id"] for r in routed] == ["small", "small", "small", "large", "large"]
    assert server.pending("small") == server.pending("large") == 0
    assert ai[-1].text.startswith("Simulated answer from model 'large'")
    handover = routed[3]["reasons"][0]
    assert handover.startswith("3 tool errors in a row and the same call 3 times: predicted failure ")
    assert handover.endswith(f" > {model.threshold:.2f}")
    assert routed[4]["reasons"][0] == (
        f"run 'order-7' was handed up to tier 2 at step 4 ({handover}); it stays there"
    )

    # The thread's spend is each attempt's usage at its model's prices.
    prices = {m.id: m.prices for m in registry}
    attempts = [a for r in routed for a in r["attempts"]]
    by_usage = sum(
        prices[a["model_id"]].input * a["input_tokens"] / 1e6
        + prices[a["model_id"]].output * a["output_tokens"] / 1e6
        for a in attempts
    )
    (thread,) = await ledger.usage(["run:order-7"])
    assert len(attempts) == 5
    assert thread.spent_usd == pytest.approx(sum(r["cost_usd"] for r in routed), rel=1e-9)
    assert thread.spent_usd == pytest.approx(by_usage, rel=1e-9)
    assert thread.reserved_usd == 0.0
