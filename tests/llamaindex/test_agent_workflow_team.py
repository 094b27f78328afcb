"""Agents of a LlamaIndex `AgentWorkflow` sharing one `RoutedLLM`: the run the next agent reads.

When an agent hands over (AgentWorkflow's `handoff` tool), the next agent's calls send the whole
shared memory: the user's message, then every call and result of the agent before it. Its task starts
where it was handed over, as on a user's turn: the failed tools of the agent before it are not its
error streak (here a lookup that failed in the same message as the handoff), whether it is a
`FunctionAgent` or a `ReActAgent`.
"""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.tools import FunctionTool
from llamaindex_support import MakeRouter, Observed

from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM

pytestmark = [  # LlamaIndex's own noise: see test_function_agent and test_react_agent
    pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect"),
    pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning"),
]

ANSWER = "Order 7 is delayed; we will write to you when it ships."


def find_order(order_id: str) -> str:
    """Where an order stands."""
    raise ConnectionError("failed to reach the order service")


@pytest.mark.parametrize("react", [False, True], ids=["function-agent", "react-agent"])
async def test_the_agent_handed_over_to_starts_its_task_without_the_previous_agents_errors(
    react: bool, make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed
) -> None:
    llm = RoutedLLM(make_router())  # one failed tool moves a step up (conftest)
    orders = FunctionAgent(
        name="orders",
        description="Looks orders up.",
        tools=[FunctionTool.from_defaults(find_order)],
        llm=llm,
        can_handoff_to=["writer"],
    )
    writer_class = ReActAgent if react else FunctionAgent
    writer = writer_class(name="writer", description="Writes to the customer.", tools=[], llm=llm)
    workflow = AgentWorkflow(agents=[orders, writer], root_agent="orders")
    server.script(
        "small",
        Reply(
            tool_calls=[
                ("handoff", {"to_agent": "writer", "reason": "the customer wants a word"}),
                ("find_order", {"order_id": "7"}),
            ]
        ),
        Reply(text=f"Thought: I can answer without tools.\nAnswer: {ANSWER}" if react else ANSWER),
    )

    result = await workflow.run(user_msg="When does order 7 ship?")

    assert str(result.response.content) == ANSWER
    decisions = observed.records("decision")
    # The writer's first step: the run's second, its own first, on the small model.
    assert [(d["step_index"], d["step_type"], d["model"]) for d in decisions] == [
        (0, "act", "small"), (1, "act", "small")
    ]  # fmt: skip
    assert server.pending("small") == server.pending("large") == 0
