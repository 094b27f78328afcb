"""A LlamaIndex `FunctionAgent` on `RoutedLLM`: real tools, the real router, the real `openai` SDK.

The local server is the model: each test scripts what the small and the large model answer, so the
agent's run is fixed step by step. Everything between the agent and that server is the product.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import (
    AgentOutput,
    AgentWorkflow,
    FunctionAgent,
    ToolCall,
    ToolCallResult,
)
from llama_index.core.tools import FunctionTool
from llamaindex_support import MakeRouter, Observed

from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM, run_scope

# LlamaIndex's workflows look their steps up with inspect.getmembers on the agent, a pydantic model,
# which touches pydantic's deprecated attributes: noise from the framework, not from this package.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

ANSWER = "Order A-17 ships tomorrow: 12 units of SKU-9 are in stock."
REASON = "the customer needs a delivery promise worded with care"


def lookup_order(order_id: str) -> str:
    """The items and payment state of an order."""
    return f"Order {order_id}: 2 x SKU-9, paid"


class Inventory:
    """A stock service that is down on the first call."""

    def __init__(self) -> None:
        self.calls = 0

    def check_inventory(self, sku: str, warehouse: str = "any") -> str:
        """How many units of a product are in stock."""
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("failed to reach the inventory service")
        return f"12 units of {sku} in stock ({warehouse} warehouse)"


def _script(server: LocalOpenAIServer) -> None:
    server.script(
        "small",
        Reply(tool_calls=[("lookup_order", {"order_id": "A-17"})]),
        Reply(tool_calls=[("check_inventory", {"sku": "SKU-9"})]),
        Reply(tool_calls=[("escalate", {"reason": REASON})]),
    )
    server.script(
        "large",
        Reply(tool_calls=[("check_inventory", {"sku": "SKU-9", "warehouse": "main"})]),
        Reply(text=ANSWER),
    )


async def _run(agent: FunctionAgent, question: str) -> tuple[AgentOutput, list[Any]]:
    handler = agent.run(user_msg=question)
    events = [event async for event in handler.stream_events()]
    return await handler, events


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "plain"])
async def test_a_multi_step_run_is_routed_step_by_step(
    streaming: bool, make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    llm = RoutedLLM(make_router(budgets=ledger), agent_id="support")
    inventory = Inventory()
    tools = [FunctionTool.from_defaults(lookup_order), FunctionTool.from_defaults(inventory.check_inventory)]
    agent = FunctionAgent(tools=tools, llm=llm, streaming=streaming, system_prompt="You are a support agent.")
    _script(server)

    with run_scope(run_id="ticket-7"):
        result, events = await _run(agent, "Can order A-17 ship tomorrow?")

    assert str(result.response.content) == ANSWER
    # Step 0 acts and step 1 reads a good result on the small model; the failed inventory call moves
    # step 2 up to the large one; step 3 goes back down, where the small model escalates on its own.
    assert observed.served() == ["small", "small", "large", "small", "large"]
    decisions = observed.records("decision")
    assert [(d["step_index"], d["step_type"], d["model"]) for d in decisions] == [
        (0, "act", "small"),
        (1, "observe", "small"),
        (2, "observe", "large"),
        (3, "observe", "small"),
        (3, "observe", "large"),  # the hand-over: the same step, re-planned above the small model
    ]
    assert any("1 consecutive tool errors: escalating one tier" in r for r in decisions[2]["reasons"])
    assert {d["run_id"] for d in decisions} == {"ticket-7"} and {d["agent_id"] for d in decisions} == {
        "support"
    }

    # The small model's escalate call is recorded with its reason...
    (escalation,) = observed.records("escalation")
    assert (escalation["from"], escalation["to"], escalation["reason"]) == ("small", "large", REASON)
    final = [e for e in events if isinstance(e, AgentOutput)][-1]
    assert final.raw["escalations"] == [{"from": "small", "to": "large", "reason": REASON, "source": "self"}]
    # ...and invisible to the agent: it never saw the tool, a call to it, or a result for it.
    called = [e.tool_name for e in events if isinstance(e, (ToolCall, ToolCallResult))]
    assert "escalate" not in called and called.count("check_inventory") == 4  # call + result, twice
    sent_to_large = observed.body(4)["messages"]
    assert all(
        call["function"]["name"] != "escalate" for m in sent_to_large for call in m.get("tool_calls") or ()
    )
    assert observed.tools(0) == ["lookup_order", "check_inventory", "escalate"]
    assert observed.tools(2) == ["lookup_order", "check_inventory"]  # the top tier is offered no escalation
    # The tool's failure reached the next step as a tool message the model can read.
    failure = observed.body(2)["messages"][-1]
    assert failure["role"] == "tool" and "failed to reach the inventory service" in failure["content"]

    # The ledger charged the run and the agent exactly what the server's usages cost.
    status = await ledger.status(["run:ticket-7"])
    (run_limit,) = status.limits
    assert run_limit.spent_usd == pytest.approx(observed.spent()) and run_limit.reserved_usd == 0
    assert {"agent:support", "run:ticket-7"} <= set(await ledger.keys())


async def test_parallel_tool_calls_run_together_in_one_step(
    make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    llm = RoutedLLM(make_router(), self_escalation=False)
    inventory = Inventory()
    inventory.calls = 1  # the service is up
    tools = [FunctionTool.from_defaults(lookup_order), FunctionTool.from_defaults(inventory.check_inventory)]
    agent = FunctionAgent(tools=tools, llm=llm, streaming=False)
    server.script(
        "small",
        Reply(tool_calls=[("lookup_order", {"order_id": "A-17"}), ("check_inventory", {"sku": "SKU-9"})]),
    )
    result, events = await _run(agent, "Order A-17 and stock of SKU-9?")
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert sorted(r.tool_name for r in results) == ["check_inventory", "lookup_order"]
    assert observed.served() == ["small", "small"]  # both results read in one observe step
    assert observed.body(0)["parallel_tool_calls"] is True
    assert "escalate" not in observed.tools(0)  # self-escalation switched off on this LLM
    assert "lookup_order returned" in str(result.response.content)
    assert "check_inventory returned" in str(result.response.content)


async def test_an_agent_workflow_runs_on_the_routed_llm(make_router: MakeRouter, observed: Observed) -> None:
    llm = RoutedLLM(make_router(), agent_id="desk")
    workflow = AgentWorkflow(
        agents=[
            FunctionAgent(name="orders", description="Answers order questions", tools=[lookup_order], llm=llm)
        ]
    )
    # Unscripted: the simulated small model calls the tool first, then sums up its result.
    result = await workflow.run(user_msg="What is in order A-17?")
    assert "lookup_order returned" in str(result.response.content)
    assert observed.served() == ["small", "small"]
    assert [d["step_type"] for d in observed.records("decision")] == ["act", "observe"]


async def test_agents_of_a_workflow_hand_off_and_each_pays_from_its_own_key(
    make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    # LlamaIndex tells an LLM nothing of the agent calling it: each agent gets a copy with its own
    # `agent_id`, and the copies share one router, so one ledger and one decision log.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    desk = RoutedLLM(make_router(budgets=ledger), self_escalation=False)
    workflow = AgentWorkflow(
        agents=[
            FunctionAgent(
                name="triage",
                description="Sends each question to the agent that answers it",
                llm=desk.model_copy(update={"agent_id": "triage"}),
                can_handoff_to=["orders"],
            ),
            FunctionAgent(
                name="orders",
                description="Answers order questions",
                tools=[lookup_order],
                llm=desk.model_copy(update={"agent_id": "orders"}),
            ),
        ],
        root_agent="triage",
    )
    server.script(
        "small",
        Reply(tool_calls=[("handoff", {"to_agent": "orders", "reason": "an order question"})]),
        Reply(tool_calls=[("lookup_order", {"order_id": "A-17"})]),
        Reply(text=ANSWER),
    )
    handler = workflow.run(user_msg="Can order A-17 ship tomorrow?")
    events = [event async for event in handler.stream_events()]
    result = await handler

    assert result.current_agent_name == "orders" and str(result.response.content) == ANSWER
    assert [e.tool_name for e in events if isinstance(e, ToolCallResult)] == ["handoff", "lookup_order"]
    speakers = [e.current_agent_name for e in events if isinstance(e, AgentOutput)]
    assert speakers == ["triage", "orders", "orders"]
    # The orders agent's first step starts its task (`act`); it reads no result of its own yet.
    assert [d["step_type"] for d in observed.records("decision")] == ["act", "act", "observe"]
    assert observed.tools(0) == ["handoff"] and "lookup_order" in observed.tools(1)

    costs = [a["cost_usd"] for a in observed.records("attempt")]

    async def spent(key: str) -> float:
        (limit,) = (await ledger.status([key])).limits
        return limit.spent_usd

    assert await spent("agent:triage") == pytest.approx(costs[0])
    assert await spent("agent:orders") == pytest.approx(costs[1] + costs[2])
