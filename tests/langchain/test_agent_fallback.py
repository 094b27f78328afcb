"""A LangGraph agent whose cheap model fails mid-run: the chain's next model takes the step as it is.

The cheap model is offered gearshift's `escalate` tool (a stronger model is above it). When it fails and
the step falls back to the top tier, that model has no one to hand the step to: it must get the agent's
own tools only, or a call to `escalate` would be dropped from its answer and leave the agent nothing;
so must every model when hand-overs are turned off.
"""

from __future__ import annotations

from collections.abc import Callable

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from gearshift import Router
from gearshift.testing import Fail, LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel


@tool
def lookup(order_id: str) -> str:
    """The state of an order."""
    return f"order {order_id}: shipped"


def test_a_fallback_to_the_top_tier_is_not_offered_escalate(
    server: LocalOpenAIServer, router: Router
) -> None:
    agent = create_agent(RoutedChatModel(router=router), [lookup])
    server.script("small", Fail(503))  # the first step's model is down: `large` takes the step
    server.script("large", Reply(tool_calls=[("lookup", {"order_id": "A-17"})]), Reply(text="It shipped."))

    result = agent.invoke({"messages": [HumanMessage("Where is order A-17?")]})

    final = result["messages"][-1]
    assert isinstance(final, AIMessage) and final.text == "It shipped."
    offered = [(r.model, [t["function"]["name"] for t in r.body.get("tools", [])]) for r in server.requests]
    assert offered == [
        ("small", ["lookup", "escalate"]),
        ("large", ["lookup"]),  # the fallback: the agent's tools, as the top tier always gets them
        ("large", ["lookup"]),  # `small` cools down after its failure
    ]


def test_no_model_is_offered_escalate_when_no_hand_over_may_happen(
    server: LocalOpenAIServer, make_router: Callable[..., Router]
) -> None:
    # `max_escalations = 0` turns hand-overs off: the chat model's default `self_escalation=True` must
    # not offer a tool whose call would be dropped, leaving the agent an empty answer.
    router = make_router(max_escalations=0)
    agent = create_agent(RoutedChatModel(router=router), [lookup])
    server.script("small", Reply(tool_calls=[("lookup", {"order_id": "A-17"})]), Reply(text="It shipped."))

    result = agent.invoke({"messages": [HumanMessage("Where is order A-17?")]})

    assert result["messages"][-1].text == "It shipped."
    assert [[t["function"]["name"] for t in r.body.get("tools", [])] for r in server.requests] == [
        ["lookup"],
        ["lookup"],
    ]


def test_a_hand_over_that_fails_leaves_the_agent_the_cheap_models_step(
    server: LocalOpenAIServer, router: Router
) -> None:
    # The cheap model looks the order up and asks for a stronger model; the stronger one is down. The
    # agent gets the cheap model's tool call (not an error), and the metadata says it was kept.
    agent = create_agent(RoutedChatModel(router=router), [lookup])
    server.script(
        "small",
        Reply(tool_calls=[("lookup", {"order_id": "A-17"}), ("escalate", {"reason": "unsure"})]),
        Reply(text="It shipped."),
    )
    server.script("large", Fail(500))

    result = agent.invoke({"messages": [HumanMessage("Where is order A-17?")]})

    ai = [m for m in result["messages"] if isinstance(m, AIMessage)]
    assert [c["name"] for c in ai[0].tool_calls] == ["lookup"]
    assert ai[-1].text == "It shipped."
    routed = ai[0].response_metadata["gearshift"]
    assert routed["model_id"] == "small"
    assert routed["reasons"][-1].startswith(
        "kept the tier-1 answer of small, which asked to escalate (unsure)"
    )
    (escalation,) = routed["escalations"]
    assert escalation["to"] == "large" and "HTTP 500" in escalation["failed"]
