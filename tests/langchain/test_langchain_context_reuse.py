"""The step context read with the converted messages equals the one read from LangChain's messages alone.

`step_context` takes roles and failed results from the gearshift conversion of the history rather than
testing LangChain's message classes again. The reference below is how the context was read before;
both must agree on the step count, the step type and the tool history, on generated agent histories
with failed tools, repeated calls, calls without ids, invalid calls, `ChatMessage`s and chunks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    ToolMessage,
)

from gearshift import StepType, ToolRecord, hash_arguments
from gearshift_langchain._context import _NODE_WORDS, _WORD, StepDefaults, step_context
from gearshift_langchain._convert import convert_messages

# -- the reference: the context as read from LangChain's messages alone ------------------------------


def _reference(
    node: str | None, history: Sequence[BaseMessage], has_tools: bool
) -> tuple[int, StepType, tuple[ToolRecord, ...], int]:
    steps = 0
    calls: list[Any] = []
    failed: set[int] = set()  # the positions in `calls` of the calls whose result failed
    open_calls: dict[Any, list[int]] = {}  # a result answers a call of the AIMessage before it
    turn_start = 0  # the calls made before the last user message that follows no tool result
    previous: BaseMessage | None = None
    for message in history:
        if isinstance(message, HumanMessage) or (
            isinstance(message, ChatMessage) and message.role in ("user", "human")
        ):
            if not isinstance(previous, ToolMessage):
                turn_start = len(calls)
        elif isinstance(message, AIMessage):
            steps += 1
            open_calls = {}
            for call in message.tool_calls:
                open_calls.setdefault(call.get("id"), []).append(len(calls))
                calls.append(call)
        elif isinstance(message, ChatMessage) and message.role in ("assistant", "ai"):
            open_calls = {}
        elif isinstance(message, ToolMessage) and open_calls.get(message.tool_call_id):
            index = open_calls[message.tool_call_id].pop(0)
            if message.status == "error":
                failed.add(index)
        previous = message
    records = tuple(
        ToolRecord(call["name"], index not in failed, hash_arguments(call.get("args") or {}))
        for index, call in enumerate(calls)
    )
    step_type = StepType.OTHER
    words = [word.lower() for word in _WORD.findall(node or "")]
    named = [step for prefixes, step in _NODE_WORDS if any(word.startswith(prefixes) for word in words)]
    last = history[-1] if history else None
    if named:
        step_type = named[0]
    elif isinstance(last, ToolMessage):
        step_type = StepType.OBSERVE
    elif isinstance(last, HumanMessage) and has_tools:
        step_type = StepType.ACT
    return steps, step_type, records, turn_start


# -- generated histories ---------------------------------------------------------------------------

_ARGUMENTS: tuple[dict[str, Any], ...] = (
    {"path": "src/build.py"},
    {"path": "src/build.py", "line": 3},
    {"line": 3, "path": "src/build.py"},
    {"q": "café", "n": [1, 2.5, None, True]},
    {},
)
_NODES = (None, "model", "agent", "planner", "final_answer", "summarizeFindings", "critic", "tools", "x")


def _user(rng: random.Random, text: str) -> BaseMessage:
    kind = rng.random()
    if kind < 0.1:
        return ChatMessage(content=text, role=rng.choice(("user", "human")))
    return HumanMessageChunk(content=text) if kind < 0.2 else HumanMessage(text)


def _history(rng: random.Random) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("You are a coding agent.")] if rng.random() < 0.8 else []
    messages.append(_user(rng, "The nightly build fails; fix it."))
    previous: list[dict[str, Any]] = []
    for step in range(rng.randint(0, 8)):
        kind = rng.random()
        if kind < 0.1:
            messages.append(ChatMessage(content="An answer.", role=rng.choice(("assistant", "ai"))))
            continue
        if kind < 0.2:
            messages.append(_user(rng, "Go on."))
            continue
        if previous and rng.random() < 0.3:
            calls = [dict(call) for call in previous]  # a loop: the same calls again
        else:
            calls = [
                {"name": f"tool_{rng.randrange(4)}", "args": dict(rng.choice(_ARGUMENTS))}
                for _ in range(rng.randint(1, 3))
            ]
        for n, call in enumerate(calls):
            call["id"] = rng.choice((f"c{step}_{n}", "call_0", "", None))
        previous = calls
        ai_class = AIMessageChunk if rng.random() < 0.15 else AIMessage
        invalid = (
            [{"name": "tool_9", "args": "{not json", "id": f"bad{step}", "error": None}]
            if rng.random() < 0.1
            else []
        )
        messages.append(ai_class(content="", tool_calls=calls, invalid_tool_calls=invalid))
        answered = list(calls)
        rng.shuffle(answered)
        for call in answered[: rng.randint(0, len(answered))]:
            call_id = call["id"] if rng.random() < 0.9 else "unknown-id"
            status = "error" if rng.random() < 0.3 else "success"
            text = rng.choice(("done", "Error: build step failed with exit code 2", ""))
            messages.append(ToolMessage(text, tool_call_id=call_id or "", name=call["name"], status=status))
    return messages


def test_the_context_with_converted_messages_equals_the_context_read_from_langchain() -> None:
    rng = random.Random(16)
    seen = {"failed": 0, "ok": 0, "repeated": 0, "observe": 0, "act": 0}
    for _ in range(600):
        history = _history(rng)
        node = rng.choice(_NODES)
        metadata = {"langgraph_node": node} if node is not None else {}
        converted = convert_messages(history)
        for has_tools in (True, False):
            context = step_context(metadata, history, converted, StepDefaults(), has_tools=has_tools)
            expected = _reference(node, history, has_tools)
            got = (context.step_index, context.step_type, context.tool_history, context.turn_start)
            assert got == expected, history
            seen["observe"] += context.step_type is StepType.OBSERVE
            seen["act"] += context.step_type is StepType.ACT
        seen["failed"] += sum(not r.ok for r in context.tool_history)
        seen["ok"] += sum(r.ok for r in context.tool_history)
        seen["repeated"] += context.repeated_tool_calls > 0
    # The histories exercised what they are meant to: failures, successes, loops and both step types.
    assert min(seen.values()) > 10, seen


def test_a_converted_history_of_another_length_is_refused() -> None:
    history = [HumanMessage("hi"), AIMessage("hello")]
    with pytest.raises(ValueError, match="1 converted messages for 2 LangChain messages"):
        step_context({}, history, convert_messages(history[:1]), StepDefaults(), has_tools=False)
