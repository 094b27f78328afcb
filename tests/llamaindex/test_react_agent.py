"""A LlamaIndex `ReActAgent` on `RoutedLLM`: the agent works from text, the router from its history.

ReAct agents call tools through `Thought:` / `Action:` / `Action Input:` text and get results back as
`Observation:` messages, so the local server's models are scripted with such text. The router, the
`openai` SDK, the tools and the agent are real.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentOutput, ReActAgent, ToolCallResult
from llama_index.core.tools import FunctionTool
from llamaindex_support import MakeRouter, Observed

from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM

# LlamaIndex's workflows look their steps up with inspect.getmembers on the agent, a pydantic model,
# which touches pydantic's deprecated attributes: noise from the framework, not from this package.
# ReActAgent also still asks its context `is_running`, which the workflows package deprecates.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect"),
    pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning"),
]

ANSWER = "Order A-17 ships tomorrow: 12 units of SKU-9 are in stock."
REASON = "the final answer is a promise to a customer"


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


def _act(thought: str, tool: str, **arguments: Any) -> Reply:
    return Reply(text=f"Thought: {thought}\nAction: {tool}\nAction Input: {json.dumps(arguments)}")


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "plain"])
async def test_a_react_run_is_routed_step_by_step(
    streaming: bool, make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    llm = RoutedLLM(make_router(budgets=ledger), agent_id="react-support", run_id="ticket-9")
    inventory = Inventory()
    tools = [FunctionTool.from_defaults(lookup_order), FunctionTool.from_defaults(inventory.check_inventory)]
    agent = ReActAgent(tools=tools, llm=llm, streaming=streaming)
    server.script(
        "small",
        _act("I need the order first.", "lookup_order", order_id="A-17"),
        _act("Now the stock.", "check_inventory", sku="SKU-9"),
        Reply(tool_calls=[("escalate", {"reason": REASON})]),
    )
    server.script(
        "large",
        _act("The service failed; try the main warehouse.", "check_inventory", sku="SKU-9", warehouse="main"),
        Reply(text=f"Thought: I can answer without using any more tools.\nAnswer: {ANSWER}"),
    )

    handler = agent.run(user_msg="Can order A-17 ship tomorrow?")
    events = [event async for event in handler.stream_events()]
    result = await handler

    assert str(result.response.content) == ANSWER
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [(r.tool_name, r.tool_output.is_error) for r in results] == [
        ("lookup_order", False),
        ("check_inventory", True),
        ("check_inventory", False),
    ]
    # The failed action, read from the `Observation:` text, moves the next step up a tier.
    assert observed.served() == ["small", "small", "large", "small", "large"]
    decisions = observed.records("decision")
    assert [(d["step_index"], d["step_type"]) for d in decisions] == [
        (0, "act"),
        (1, "observe"),
        (2, "observe"),
        (3, "observe"),
        (3, "observe"),
    ]
    assert any("1 consecutive tool errors" in r for r in decisions[2]["reasons"])

    # The small model's hand-over is recorded, and the agent only ever saw the large model's answer.
    final = [e for e in events if isinstance(e, AgentOutput)][-1]
    assert final.raw["escalations"] == [{"from": "small", "to": "large", "reason": REASON, "source": "self"}]
    assert "escalate" not in {r.tool_name for r in results}
    assert observed.tools(3) == ["escalate"] and observed.tools(4) == []

    # Spend went to the agent's and the run's keys, and matches what the server's usages cost.
    (agent_limit,) = (await ledger.status(["agent:react-support"])).limits
    assert agent_limit.spent_usd == pytest.approx(observed.spent())
    assert set(await ledger.keys()) >= {"agent:react-support", "run:ticket-9"}
