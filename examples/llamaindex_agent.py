"""A LlamaIndex agent whose every step is routed by gearshift.

    uv run python examples/llamaindex_agent.py

A `FunctionAgent` answers a support question with two tools; its LLM is `RoutedLLM`, so each step goes
to the cheapest model that will do it, a failed tool call moves the next step up a tier, a cheap model
may hand a step to a stronger one (the agent never sees that), and the run's spend is kept in a budget.

Offline (no key set) it starts gearshift's local OpenAI-compatible server on 127.0.0.1 with a small and
a large simulated model and scripts their replies, so the run is the same every time. With
OPENAI_API_KEY or ANTHROPIC_API_KEY set it runs the same agent over the built-in ladder of real
models (or your gearshift.toml), and the models decide for themselves.
"""

from __future__ import annotations

import asyncio
import os

from llama_index.core.agent.workflow import AgentOutput, FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, ScorerConfig, SignalScorer
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM, run_scope

QUESTION = "Can order A-17 ship tomorrow?"


def lookup_order(order_id: str) -> str:
    """The items and payment state of an order."""
    return f"Order {order_id}: 2 x SKU-9, paid"


class Inventory:
    """A stock service that is down on the first call."""

    def __init__(self) -> None:
        self.calls = 0

    def check_inventory(self, sku: str, warehouse: str = "any") -> str:
        """How many units of a product are in stock, in one warehouse or any."""
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("failed to reach the inventory service")
        return f"12 units of {sku} in stock ({warehouse} warehouse)"


async def run_agent(llm: RoutedLLM) -> None:
    inventory = Inventory()
    agent = FunctionAgent(
        tools=[
            FunctionTool.from_defaults(lookup_order),
            FunctionTool.from_defaults(inventory.check_inventory),
        ],
        llm=llm,
        system_prompt="You are a support agent. Use the tools, then answer in one sentence.",
    )
    print(f"> {QUESTION}")
    with run_scope(run_id="ticket-17"):
        handler = agent.run(user_msg=QUESTION)
        async for event in handler.stream_events():
            if isinstance(event, AgentOutput) and isinstance(event.raw, dict) and "model_id" in event.raw:
                record = event.raw
                print(f"  step on {record['model_id']} (tier {record['tier']}), ${record['cost_usd']:.6f}")
                print(f"    why: {'; '.join(record['reasons'][1:])}")
                for hand_over in record["escalations"]:
                    print(f"    escalated {hand_over['from']} -> {hand_over['to']}: {hand_over['reason']}")
            elif isinstance(event, ToolCallResult):
                outcome = "FAILED" if event.tool_output.is_error else "ok"
                print(f"  tool {event.tool_name} {outcome}: {event.tool_output.content}")
        result = await handler
    print(f"< {result.response.content}")
    ledger = llm.router.budgets
    if ledger is not None:
        for status in (await ledger.status(["run:ticket-17"])).limits:
            print(f"budget {status.name}: spent ${status.spent_usd:.6f} of ${status.limit_usd}")


def offline() -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        registry = ModelRegistry(
            [
                ModelSpec(
                    id="small",
                    provider="local",
                    model="small",
                    tier=1,
                    prices=ModelPrices(input=0.15, output=0.6),
                ),
                ModelSpec(
                    id="large",
                    provider="local",
                    model="large",
                    tier=2,
                    prices=ModelPrices(input=2.5, output=10.0),
                ),
            ]
        )
        router = Router(
            registry,
            # One failed tool call moves the next step up a tier (the default waits for two in a row).
            policy=SignalScorer(ScorerConfig(escalate_after_errors=1)),
            providers=[OpenAIProvider("local", base_url=server.base_url, require_key=False)],
            budgets=BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=0.05)]),
        )
        # The simulated models' answers, step by step: the large model takes the step after the failed
        # inventory call, and the small one hands the final answer to the large one.
        server.script(
            "small",
            Reply(tool_calls=[("lookup_order", {"order_id": "A-17"})]),
            Reply(tool_calls=[("check_inventory", {"sku": "SKU-9"})]),
            Reply(tool_calls=[("escalate", {"reason": "a delivery promise to a customer needs care"})]),
        )
        server.script(
            "large",
            Reply(tool_calls=[("check_inventory", {"sku": "SKU-9", "warehouse": "main"})]),
            Reply(
                text="Yes: order A-17 (2 x SKU-9) is paid and 12 units are in stock, so it ships tomorrow."
            ),
        )
        asyncio.run(run_agent(RoutedLLM(router, agent_id="support")))


def live() -> None:
    asyncio.run(run_agent(RoutedLLM(Router.from_config(), agent_id="support")))


if __name__ == "__main__":
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY"):
        live()
    else:
        offline()
