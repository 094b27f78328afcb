"""A streamed LangGraph agent is routed with its run's metadata, as an invoked one is.

LangChain hands `_stream` / `_astream` no run manager (`stream`, `astream`, and an `invoke` that
streams under `astream_events` or `stream_mode="messages"`), so the thread, the agent and the node
must reach the step context another way. The local server's models answer through the real `openai`
SDK; the ledger and the decision log are real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from gearshift import Router, read_records
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import CutStream, Fail, LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

CONFIG: Any = {"configurable": {"thread_id": "t-7"}, "metadata": {"agent_id": "helper"}}


@tool
def stock(sku: str) -> str:
    """Units of a product in stock."""
    return f"12 units of {sku}"


@pytest.fixture
def ledger() -> BudgetLedger:
    return BudgetLedger(MemoryStore(), [BudgetLimit(name="per-thread", key="run:*", usd=1.0)])


def _decisions(log: Path) -> list[tuple[Any, ...]]:
    return [
        (r["agent_id"], r["run_id"], r["step_type"]) for r in read_records(log) if r["kind"] == "decision"
    ]


@pytest.mark.async_run_config
@pytest.mark.parametrize("mode", ["messages", "events"])
async def test_a_streamed_agent_run_is_charged_to_its_thread_and_agent(
    mode: str,
    server: LocalOpenAIServer,
    make_router: Callable[..., Router],
    ledger: BudgetLedger,
    tmp_path: Path,
) -> None:
    log = tmp_path / "log.jsonl"
    router = make_router(budgets=ledger, decision_log=open_decision_log(log))
    agent = create_agent(RoutedChatModel(router=router), [stock])
    server.script("small", Reply(tool_calls=[("stock", {"sku": "SKU-9"})]), Reply(text="12 in stock."))
    question = {"messages": [HumanMessage("How many SKU-9 do we have?")]}

    streamed = []
    if mode == "messages":
        async for chunk, _ in agent.astream(question, CONFIG, stream_mode="messages"):
            streamed.append(chunk)
    else:
        async for event in agent.astream_events(question, CONFIG, version="v2"):
            if event["event"] == "on_chat_model_stream":
                streamed.append(event["data"]["chunk"])

    assert streamed and server.pending("small") == 0
    (thread,) = await ledger.usage(["run:t-7"])
    (helper,) = await ledger.usage(["agent:helper"])
    assert thread.spent_usd > 0 and thread.reserved_usd == 0
    assert helper.spent_usd == pytest.approx(thread.spent_usd)
    router.close()
    assert _decisions(log) == [("helper", "t-7", "act"), ("helper", "t-7", "observe")]


@pytest.mark.parametrize("use_async", [False, True], ids=["stream", "astream"])
async def test_a_streamed_call_reads_the_metadata_of_its_config(
    use_async: bool, ledger: BudgetLedger, tmp_path: Path, make_router: Callable[..., Router]
) -> None:
    log = tmp_path / "log.jsonl"
    routed = make_router(budgets=ledger, decision_log=open_decision_log(log))
    model = RoutedChatModel(router=routed)
    config: Any = {"metadata": {"agent_id": "writer", "run_id": "r-1", "step_type": "summarize"}}

    if use_async:
        chunks = [chunk async for chunk in model.astream("Summarize the report.", config)]
    else:
        chunks = list(model.stream("Summarize the report.", config))

    assert chunks[-1].response_metadata["gearshift"]["model_id"] == "small"
    (run,) = await ledger.usage(["run:r-1"])
    assert run.spent_usd > 0
    routed.close()
    assert _decisions(log) == [("writer", "r-1", "summarize")]


@pytest.mark.async_run_config
async def test_a_cheap_model_s_broken_stream_falls_back_when_no_one_saw_it(
    server: LocalOpenAIServer, make_router: Callable[..., Router], ledger: BudgetLedger, tmp_path: Path
) -> None:
    # `small` may hand the step over (self-escalation), so its events are held back until its answer is
    # done: when its stream breaks, the agent has seen none of it, and the chain's next model answers.
    log = tmp_path / "log.jsonl"
    router = make_router(budgets=ledger, decision_log=open_decision_log(log))
    agent = create_agent(RoutedChatModel(router=router), [stock])
    server.script("small", CutStream(after_chunks=2))
    server.script("large", Reply(text="We have 12 of them."))

    texts = [
        chunk.text
        async for chunk, _ in agent.astream(
            {"messages": [HumanMessage("How many SKU-9 do we have?")]}, CONFIG, stream_mode="messages"
        )
    ]

    assert "".join(texts) == "We have 12 of them."
    assert [r.model for r in server.requests] == ["small", "large"]
    router.close()
    attempts = [(r["model"], r["ok"]) for r in read_records(log) if r["kind"] == "attempt"]
    assert attempts == [("small", False), ("large", True)]
    (thread,) = await ledger.usage(["run:t-7"])
    assert thread.reserved_usd == 0
    # The broken call was billed by the provider: charged at gearshift's estimate, with the answer.
    assert thread.spent_usd > sum(
        r["cost_usd"] for r in read_records(log) if r["kind"] == "attempt" and r["ok"]
    )


def _sse(*deltas: dict[str, Any]) -> str:
    """A raw chat-completions stream of these deltas, then its end (`finish_reason`, usage)."""
    chunks = [{"id": "c-1", "model": "small", "choices": [{"index": 0, "delta": d}]} for d in deltas]
    chunks.append(
        {
            "id": "c-1",
            "model": "small",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
        }
    )
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


@pytest.mark.async_run_config
async def test_a_streamed_tool_call_without_an_id_still_reaches_its_tool(
    server: LocalOpenAIServer, router: Router
) -> None:
    # Some OpenAI-compatible servers stream tool calls without ids; the agent answers a call by its id.
    no_ids = _sse(
        {"role": "assistant", "tool_calls": [{"index": 0, "function": {"name": "stock", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"sku": "SKU-9"}'}}]},
    )
    server.script("small", Fail(200, body=no_ids), Reply(text="12 in stock."))
    agent = create_agent(RoutedChatModel(router=router, self_escalation=False), [stock])

    messages = [
        message
        async for message, _ in agent.astream(
            {"messages": [HumanMessage("How many SKU-9 do we have?")]}, stream_mode="messages"
        )
        if isinstance(message, ToolMessage)
    ]

    assert [(m.content, m.tool_call_id, m.status) for m in messages] == [
        ("12 units of SKU-9", "call_0", "success")
    ]
    assert server.pending("small") == 0
