"""A LangGraph agent with a checkpointer: the thread is the run, and a user turn breaks a tool error
streak and a loop, and starts the budget's pacing over again.

The thread keeps the whole conversation and sends it on every step, and its tool history is the run's;
but a failed tool of an earlier turn, or a call made then, is no streak nor loop of the current turn,
and each turn is paced over what the earlier ones left.
The local server's models answer through the real `openai` SDK; each step is scripted on the model
the router is expected to pick, so a step sent to the other model fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver

from gearshift import Router
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

THREAD = {"configurable": {"thread_id": "chat-1"}}


@tool
def weather(city: str) -> str:
    """Today's weather in a city."""
    if city == "Atlantis":
        raise ToolException("the weather service timed out")
    return f"sunny in {city}"


weather.handle_tool_error = True  # a failed call becomes a ToolMessage with status="error"


def _models(messages: list[BaseMessage]) -> list[str]:
    return [m.response_metadata["gearshift"]["model_id"] for m in messages if isinstance(m, AIMessage)]


def test_the_same_call_in_a_later_turn_is_no_loop(server: LocalOpenAIServer, router: Router) -> None:
    agent = create_agent(RoutedChatModel(router=router), [weather], checkpointer=InMemorySaver())
    server.script("small", Reply(tool_calls=[("weather", {"city": "Paris"})]), Reply(text="Sunny."))
    agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]}, THREAD)

    # An hour later the user asks again: the agent rightly looks again, and reads the new result.
    server.script("small", Reply(tool_calls=[("weather", {"city": "Paris"})]), Reply(text="Still sunny."))
    result = agent.invoke({"messages": [HumanMessage("And now, the weather in Paris?")]}, THREAD)

    assert _models(result["messages"]) == ["small"] * 4
    assert server.pending("small") == 0
    last = result["messages"][-1].response_metadata["gearshift"]["reasons"]
    assert not any("repeated identical tool call" in reason for reason in last)


async def test_tool_errors_of_an_earlier_turn_do_not_move_a_new_turn_up(
    server: LocalOpenAIServer, router: Router
) -> None:
    agent = create_agent(RoutedChatModel(router=router), [weather], checkpointer=InMemorySaver())
    server.script(
        "small",
        Reply(tool_calls=[("weather", {"city": "Atlantis"})]),
        Reply(tool_calls=[("weather", {"city": "Atlantis"})]),
    )
    server.script("large", Reply(text="The weather service is down; I cannot tell."))
    first = await agent.ainvoke({"messages": [HumanMessage("Weather in Atlantis?")]}, THREAD)
    assert _models(first["messages"]) == ["small", "small", "large"]  # two errors: this turn moves up

    # A new question in the same thread starts a run of its own, with no error streak behind it.
    server.script("small", Reply(tool_calls=[("weather", {"city": "Rome"})]), Reply(text="Sunny in Rome."))
    second = await agent.ainvoke({"messages": [HumanMessage("Then what about Rome?")]}, THREAD)

    assert _models(second["messages"])[3:] == ["small", "small"]
    assert server.pending("small") == server.pending("large") == 0


@pytest.mark.async_run_config
async def test_a_thread_named_by_a_uuid_is_the_run(
    server: LocalOpenAIServer, make_router: Callable[..., Router]
) -> None:
    # LangGraph takes any thread id (`uuid4()` is a common one) and puts it into the run's metadata as is.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="per-thread", key="run:*", usd=1.0)])
    agent = create_agent(
        RoutedChatModel(router=make_router(budgets=ledger)), [weather], checkpointer=InMemorySaver()
    )
    thread = UUID("5f0c8a1e-2b7d-4c55-9a41-0d6f3c2e9b10")
    server.script("small", Reply(tool_calls=[("weather", {"city": "Oslo"})]), Reply(text="Sunny."))

    result = await agent.ainvoke(
        {"messages": [HumanMessage("Weather in Oslo?")]}, {"configurable": {"thread_id": thread}}
    )

    assert result["messages"][-1].text == "Sunny."
    (spent,) = await ledger.usage([f"run:{thread}"])
    assert spent.spent_usd > 0


HARD = (
    "Prove that there are infinitely many primes, then analyze why the same argument fails for "
    "twin primes. Explain step by step and justify every claim rigorously."
)


def test_each_turn_of_a_thread_is_paced_over_what_is_left(
    server: LocalOpenAIServer, make_router: Callable[..., Router]
) -> None:
    # Two steps expected per turn, $0.008 for the thread: a step may take $0.004, less than a hard
    # proof costs on `large` (~$0.0053 for 512 output tokens), so it goes to `small`. The second turn
    # is paced over its own two steps too, not handed all that is left as the thread's second step.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="per-thread", key="run:*", usd=0.008)])
    agent = create_agent(
        RoutedChatModel(router=make_router(budgets=ledger)), [weather], checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "paced"}, "metadata": {"expected_steps": 2}}
    server.script("small", Reply(text="Euclid: multiply them all and add one."), Reply(text="No gap bound."))
    agent.invoke({"messages": [HumanMessage(HARD)]}, config)

    result = agent.invoke({"messages": [HumanMessage(f"Now the twin primes: {HARD}")]}, config)

    assert _models(result["messages"]) == ["small", "small"]
    reasons = result["messages"][-1].response_metadata["gearshift"]["reasons"]
    assert any("for ~2 more steps" in reason for reason in reasons), reasons
