"""A LangChain agent (`create_agent`) with real tools, running a multi-step task through the router.

The local server's `small` (tier 1) and `large` (tier 2) answer through the real `openai` SDK. The
simulated model cannot plan, so each step's tool call is scripted on the model the router is expected
to pick: a script left unconsumed, or a request to the other model, fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from pydantic import BaseModel

from gearshift import EmptyAnswer, ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer, read_records
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import Delay, LocalAnthropicServer, LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

THREAD = {"configurable": {"thread_id": "t-1"}, "metadata": {"agent_id": "researcher"}}
TASK = "Find out how gearshift routes agent steps and summarize it."


@tool
def search(query: str) -> str:
    """Search the web and return the top results."""
    if query.startswith("bad"):
        raise ToolException(f"search backend timed out for {query!r}")
    return f"3 results for {query!r}: gearshift routes each step to the cheapest capable model"


search.handle_tool_error = True  # a failed search becomes a ToolMessage with status="error"


@tool
def read_page(url: str) -> str:
    """Read a web page and return its text."""
    return f"page {url}: steps escalate after tool errors and loops"


def _routed_models(messages: list[BaseMessage]) -> list[str]:
    return [m.response_metadata["gearshift"]["model_id"] for m in messages if isinstance(m, AIMessage)]


def _calls(name: str, args: dict[str, Any]) -> Reply:
    return Reply(tool_calls=[(name, args)])


@pytest.fixture
def ledger() -> BudgetLedger:
    return BudgetLedger(MemoryStore(), [BudgetLimit(name="per-thread", key="run:*", usd=5.0)])


@pytest.fixture
def budgeted(make_router: Callable[..., Router], ledger: BudgetLedger, tmp_path: Path) -> Router:
    return make_router(budgets=ledger, decision_log=open_decision_log(tmp_path / "log.jsonl"))


@pytest.mark.async_run_config
async def test_the_agent_escalates_on_tool_errors_loops_and_its_own_request_and_the_ledger_adds_up(
    server: LocalOpenAIServer, budgeted: Router, ledger: BudgetLedger, registry: ModelRegistry, tmp_path: Path
) -> None:
    server.script(
        "small",
        _calls("search", {"query": "bad: gearshift routing"}),  # step 1: act; the tool fails
        _calls("search", {"query": "bad again"}),  # step 2: fails again
        _calls("read_page", {"url": "https://example.com/a"}),  # step 4
        _calls("read_page", {"url": "https://example.com/a"}),  # step 5: the same call again
        _calls("escalate", {"reason": "the sources disagree; this needs careful synthesis"}),  # step 7
    )
    server.script(
        "large",
        _calls("search", {"query": "gearshift routing"}),  # step 3: after two tool errors
        _calls("read_page", {"url": "https://example.com/b"}),  # step 6: after the repeated call
        # step 7's re-ask is unscripted: the simulated model summarizes the tool results
    )
    agent = create_agent(model=RoutedChatModel(router=budgeted), tools=[search, read_page])

    result = await agent.ainvoke({"messages": [HumanMessage(TASK)]}, THREAD)

    messages: list[BaseMessage] = result["messages"]
    assert [r.model for r in server.requests] == [
        "small", "small", "large", "small", "small", "large", "small", "large"
    ]  # fmt: skip
    assert _routed_models(messages) == ["small", "small", "large", "small", "small", "large", "large"]
    assert server.pending("small") == server.pending("large") == 0
    ai = [m for m in messages if isinstance(m, AIMessage)]
    reasons = [" ".join(m.response_metadata["gearshift"]["reasons"]) for m in ai]
    assert "2 consecutive tool errors: escalating one tier" in reasons[2]
    assert "repeated identical tool call" in reasons[5]
    assert not any("escalating" in reasons[i] for i in (0, 1, 3, 4, 6))

    # The self-escalation: recorded with the model's reason, invisible in what the agent received.
    final = ai[-1]
    assert final.response_metadata["gearshift"]["escalations"] == [
        {
            "from": "small",
            "to": "large",
            "reason": "the sources disagree; this needs careful synthesis",
            "source": "self",
        }
    ]
    assert final.text.startswith("Simulated answer from model 'large'") and not final.tool_calls
    assert all(c["name"] in ("search", "read_page") for m in ai for c in m.tool_calls)
    assert all(m.name in ("search", "read_page") for m in messages if isinstance(m, ToolMessage))
    offered = [[t["function"]["name"] for t in r.body["tools"]] for r in server.requests]
    assert offered[6] == ["search", "read_page", "escalate"]  # small was offered the tool ...
    assert "escalate" not in offered[7]  # ... the top tier never is

    # Every step's context came from LangGraph's metadata and the history.
    budgeted.close()
    decisions = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "decision"]
    assert {(r["agent_id"], r["run_id"]) for r in decisions} == {("researcher", "t-1")}
    assert [r["step_type"] for r in decisions[:3]] == ["act", "observe", "observe"]
    assert [r["step_index"] for r in decisions[:3]] == [0, 1, 2]

    # The thread's spend in the ledger is the sum of what the messages say each step cost, which is
    # each attempt's usage at its model's prices (the escalated step paid for both models).
    prices = {m.id: m.prices for m in registry}
    attempts = [a for m in ai for a in m.response_metadata["gearshift"]["attempts"]]
    by_usage = sum(
        prices[a["model_id"]].input * a["input_tokens"] / 1e6
        + prices[a["model_id"]].output * a["output_tokens"] / 1e6
        for a in attempts
    )
    recorded = sum(m.response_metadata["gearshift"]["cost_usd"] for m in ai)
    (thread,) = await ledger.usage(["run:t-1"])
    (agent_spend,) = await ledger.usage(["agent:researcher"])
    assert len(attempts) == 8
    assert thread.spent_usd == pytest.approx(recorded, rel=1e-9) == pytest.approx(by_usage, rel=1e-9)
    assert agent_spend.spent_usd == pytest.approx(thread.spent_usd, rel=1e-9)
    assert thread.reserved_usd == 0.0
    assert thread.spent_tokens == sum(m.usage_metadata["total_tokens"] for m in ai if m.usage_metadata)


def test_sticky_tool_loops_keep_the_stronger_model_for_reading_its_results(
    server: LocalOpenAIServer, router: Router
) -> None:
    server.script("small", _calls("search", {"query": "bad one"}), _calls("search", {"query": "bad two"}))
    server.script("large", _calls("search", {"query": "gearshift"}))  # after two errors
    agent = create_agent(model=RoutedChatModel(router=router, sticky_tool_loops=True), tools=[search])

    result = agent.invoke({"messages": [HumanMessage(TASK)]}, THREAD)  # sync: through the bridge

    # Without stickiness the successful search's results go back to `small` (previous test, step 4).
    assert _routed_models(result["messages"]) == ["small", "small", "large", "large"]
    assert server.pending("small") == server.pending("large") == 0


class Findings(BaseModel):
    """What the research found."""

    summary: str
    sources: list[str]


def test_an_agent_with_a_response_format_gets_it_from_whichever_model_answers(
    server: LocalOpenAIServer, router: Router
) -> None:
    # The model's profile says it supports structured output, so create_agent asks for a JSON schema
    # answer (`response_format`) next to the tools instead of adding a tool for it.
    agent = create_agent(model=RoutedChatModel(router=router), tools=[search], response_format=Findings)

    result = agent.invoke({"messages": [HumanMessage(TASK)]}, THREAD)

    assert result["structured_response"] == Findings(summary="example summary", sources=["example sources"])
    assert all(r.body["response_format"]["type"] == "json_schema" for r in server.requests)
    assert [c["name"] for c in result["messages"][1].tool_calls] == ["search"]


# -- switching providers mid-loop ---------------------------------------------------------------------

_ANTHROPIC_KEY = "sk-ant-langchain-agent-4b1d"
_PORTABLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@pytest.fixture
def anthropic_server() -> Iterator[LocalAnthropicServer]:
    with LocalAnthropicServer(models=("claude-large",), api_key=_ANTHROPIC_KEY) as local:
        yield local


async def test_switching_providers_mid_loop_keeps_tool_ids_and_results_paired(
    server: LocalOpenAIServer, anthropic_server: LocalAnthropicServer
) -> None:
    mixed = ModelRegistry(
        [
            ModelSpec(
                id="small",
                provider="local",
                model="small",
                tier=1,
                prices=ModelPrices(input=0.15, output=0.6),
            ),
            ModelSpec(
                id="claude",
                provider="anthropic",
                model="claude-large",
                tier=2,
                prices=ModelPrices(input=3.0, output=15.0),
            ),
        ]
    )
    providers = [
        OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0),
        AnthropicProvider(api_key=_ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=10.0),
    ]
    routed = Router(mixed, policy=SignalScorer(), providers=providers)
    # A history carried over from another framework: an id Anthropic refuses, the same id twice.
    history: list[BaseMessage] = [
        HumanMessage("Earlier: look up the weather."),
        AIMessage(
            "", tool_calls=[{"name": "search", "args": {"query": "weather"}, "id": "functions.search:0"}]
        ),
        ToolMessage("sunny", tool_call_id="functions.search:0"),
        AIMessage("", tool_calls=[{"name": "search", "args": {"query": "wind"}, "id": "call_0"}]),
        ToolMessage("calm", tool_call_id="call_0"),
        AIMessage("", tool_calls=[{"name": "search", "args": {"query": "rain"}, "id": "call_0"}]),
        ToolMessage("none", tool_call_id="call_0"),
        AIMessage("It is sunny, calm and dry."),
        HumanMessage(TASK),
    ]
    server.script("small", _calls("search", {"query": "bad one"}), _calls("search", {"query": "bad two"}))
    agent = create_agent(model=RoutedChatModel(router=routed), tools=[search])

    result = await agent.ainvoke({"messages": history}, THREAD)

    # small, small, then two tool errors move the step to the Anthropic model, which answers.
    new = result["messages"][len(history) :]
    assert _routed_models(new) == ["small", "small", "claude"]
    (sent,) = [r.body for r in anthropic_server.requests]
    uses = [b for m in sent["messages"] for b in _blocks(m) if b["type"] == "tool_use"]
    results = [b for m in sent["messages"] for b in _blocks(m) if b["type"] == "tool_result"]
    assert len(uses) == len(results) == 5
    assert all(_PORTABLE_ID.match(b["id"]) for b in uses)
    assert len({b["id"] for b in uses}) == 5  # unique across the conversation
    assert [b["tool_use_id"] for b in results] == [b["id"] for b in uses]
    # ... while the agent's own messages keep the ids it knows.
    assert result["messages"][1].tool_calls[0]["id"] == "functions.search:0"
    await routed.aclose()


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [content] if isinstance(content, dict) else [b for b in content if isinstance(b, dict)]


# -- one step on its own ------------------------------------------------------------------------------


async def test_a_streamed_step_that_escalates_streams_only_the_stronger_models_answer(
    server: LocalOpenAIServer, router: Router
) -> None:
    server.script("small", _calls("escalate", {"reason": "too subtle for me"}))
    model = RoutedChatModel(router=router).bind_tools([search])

    chunks = [chunk async for chunk in model.astream("Which of these claims holds up?")]

    assert [r.model for r in server.requests] == ["small", "large"]
    assert not any(c["name"] == "escalate" for chunk in chunks for c in chunk.tool_call_chunks)
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.text.startswith("Simulated answer from model 'large'") or total.tool_calls
    routed = total.response_metadata["gearshift"]
    assert routed["model_id"] == "large"
    assert routed["escalations"] == [
        {"from": "small", "to": "large", "reason": "too subtle for me", "source": "self"}
    ]


async def test_a_step_handed_up_that_comes_back_empty_raises_instead_of_an_empty_message(
    server: LocalOpenAIServer, budgeted: Router, tmp_path: Path
) -> None:
    server.script("small", _calls("escalate", {"reason": "too subtle for me"}))
    server.script("large", Reply(text="  "))
    model = RoutedChatModel(router=budgeted).bind_tools([search])

    with pytest.raises(EmptyAnswer, match=r"large \(tier 2\) answered with nothing"):
        await model.ainvoke("Which of these claims holds up?")

    budgeted.close()
    (record,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "escalation"]
    assert (record["to"], record["outcome"]) == ("large", "error")


async def test_self_escalation_can_be_turned_off(server: LocalOpenAIServer, router: Router) -> None:
    answer = await RoutedChatModel(router=router, self_escalation=False).ainvoke("hello")
    assert answer.response_metadata["gearshift"]["model_id"] == "small"
    assert "tools" not in server.requests[0].body  # no escalate tool was offered


async def test_the_timeout_covers_the_whole_routed_call(server: LocalOpenAIServer, router: Router) -> None:
    server.script("small", Delay(0.5))
    with pytest.raises(TimeoutError):
        await RoutedChatModel(router=router, timeout=0.1).ainvoke("hello")
