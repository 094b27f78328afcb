"""A LlamaIndex `FunctionAgent` on `RoutedLLM` whose router applies the learned escalation on every step.

The scripted small model keeps calling a failing order service with the same arguments; the learned
escalation (a real artifact, `tests/artifacts/make_escalation.py`) hands the run up to the large
model, which it keeps for the rest of the run. The ledger holds exactly what the server's usages cost.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool
from llamaindex_support import MakeRouter, Observed

from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.escalation import CheapestPolicy, EscalationModel
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM, run_scope

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")  # see test_function_agent

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "escalation.json"
ANSWER = "Order 7 ships tomorrow."


def find_order(order_id: str) -> str:
    """Where an order stands."""
    if order_id == "7":
        # LlamaIndex keeps no error flag: the adapter reads the text (gearshift_llamaindex._context).
        raise ConnectionError("failed to reach the order service")
    return f"order {order_id}: ships tomorrow"


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "plain"])
async def test_a_failing_run_is_handed_up_by_the_learned_escalation_and_stays_up(
    streaming: bool, make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    model = EscalationModel.load(ARTIFACT)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=1.0)])
    router = make_router(policy=CheapestPolicy(), budgets=ledger, escalation=model)
    llm = RoutedLLM(router, agent_id="shop", self_escalation=False)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(find_order)], llm=llm, streaming=streaming)
    server.script("small", *[Reply(tool_calls=[("find_order", {"order_id": "7"})])] * 3)
    server.script("large", Reply(tool_calls=[("find_order", {"order_id": "07"})]), Reply(text=ANSWER))

    with run_scope(run_id="order-7"):
        result = await agent.run(user_msg="When does order 7 ship?")

    assert str(result.response.content) == ANSWER
    assert observed.served() == ["small", "small", "small", "large", "large"]
    assert server.pending("small") == server.pending("large") == 0
    decisions = observed.records("decision")
    assert [(d["step_index"], d["model"]) for d in decisions] == [
        (0, "small"), (1, "small"), (2, "small"), (3, "large"), (4, "large")
    ]  # fmt: skip
    handover = decisions[3]["reasons"][0]
    assert handover.startswith("3 tool errors in a row and the same call 3 times: predicted failure ")
    assert handover.endswith(f" > {model.threshold:.2f}")
    assert decisions[4]["reasons"][0] == (
        f"run 'order-7' was handed up to tier 2 at step 4 ({handover}); it stays there"
    )

    (limit,) = (await ledger.status(["run:order-7"])).limits
    assert limit.spent_usd == pytest.approx(observed.spent(), rel=1e-9) and limit.reserved_usd == 0
