"""The step context read through the converted messages equals the one read from LlamaIndex's messages.

`step_context` reads roles, texts and tool results from the gearshift conversion of the history rather
than walking LlamaIndex's blocks again. The reference below is how the context was read before, from
the LlamaIndex messages alone; both must agree on every field, on generated agent histories of both
styles (function calling and ReAct) with tool errors in every form, repeated calls, calls without ids,
legacy tool calls, several runs, images and skipped blocks.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from gearshift import Message, StepType, ToolRecord, hash_arguments, is_error_result
from gearshift_llamaindex._context import step_context
from gearshift_llamaindex._convert import convert_messages

# -- the reference: the context as read from LlamaIndex's messages alone -----------------------------

_ASSISTANT = (MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL)
_TOOL = (MessageRole.TOOL, MessageRole.FUNCTION)
_OBSERVATION = "Observation:"
_RETRIES = ("FAILURE: Your previous response was empty", "Error while parsing the output")
_ACTION = re.compile(r"^Action:[ \t]*(?P<name>[^\n]+?)[ \t]*\nAction Input:[ \t]*(?P<args>.*)", re.M | re.S)
_LLAMAINDEX_ERRORS = re.compile(r"^(?:Encountered error: |Tool \S+ not found\. Please select a tool)")


def _text(message: ChatMessage) -> str:
    return "\n".join(block.text for block in message.blocks if isinstance(block, TextBlock))


def _failed(text: str, extra: Mapping[str, Any]) -> bool:
    if extra and (extra.get("is_error") is True or extra.get("status") == "error"):
        return True
    return bool(_LLAMAINDEX_ERRORS.match(text)) or is_error_result(Message.tool("", text))


def _reference(
    messages: Sequence[ChatMessage], has_tools: bool
) -> tuple[int, StepType, tuple[ToolRecord, ...]]:
    start = -1
    for index in range(len(messages) - 1, -1, -1):
        text = _text(messages[index])
        if messages[index].role == MessageRole.USER and not text.startswith((_OBSERVATION, *_RETRIES)):
            start = index
            break
    run = messages[start + 1 :]
    react = (
        bool(messages) and messages[0].role == MessageRole.SYSTEM and "Action Input:" in _text(messages[0])
    )
    records: list[ToolRecord] = []
    if react:
        pending: tuple[str, str] | None = None
        for message in run:
            text = _text(message)
            if message.role in _ASSISTANT:
                match = _ACTION.search(text)
                pending = (match["name"], hash_arguments(match["args"].strip())) if match else None
            elif pending is not None and text.startswith(_OBSERVATION):
                observation = text[len(_OBSERVATION) :].lstrip()
                records.append(
                    ToolRecord(pending[0], not _failed(observation, message.additional_kwargs), pending[1])
                )
                pending = None
    else:
        calls: dict[str, tuple[str, str]] = {}
        for message in run:
            if message.role in _ASSISTANT:
                for block in message.blocks:
                    if isinstance(block, ToolCallBlock):
                        key = block.tool_call_id or block.tool_name
                        calls[key] = (block.tool_name, hash_arguments(block.tool_kwargs))
            elif message.role in _TOOL:
                extra = message.additional_kwargs
                name, args_hash = calls.get(
                    str(extra.get("tool_call_id") or ""), (str(extra.get("name") or "unknown"), "")
                )
                records.append(ToolRecord(name, not _failed(_text(message), extra), args_hash))
    step_type = StepType.ACT if has_tools or react else StepType.RESPOND
    if run:
        last = run[-1]
        if last.role in _TOOL or (last.role == MessageRole.USER and _text(last).startswith(_OBSERVATION)):
            step_type = StepType.OBSERVE
        elif last.role == MessageRole.USER and _text(last).startswith(_RETRIES):
            step_type = StepType.REFLECT
    steps = sum(1 for m in run if m.role in _ASSISTANT)
    return steps, step_type, tuple(records)


# -- generated histories ---------------------------------------------------------------------------

_RESULTS = (
    "shipped on Monday",
    "Error: quota exhausted",
    "Encountered error: division by zero",
    "Tool get_wether not found. Please select a tool that is available.",
    '{"error": "not found"}',
    "command failed with exit code 2",
    "Traceback (most recent call last): ...",
    "No errors were found in the log.",
    "",
)
_FLAGS: tuple[dict[str, Any], ...] = (
    {},
    {"is_error": True},
    {"is_error": False},
    {"is_error": 1},
    {"is_error": "yes"},
    {"status": "error"},
    {"status": "success"},
)
_ARGUMENTS: tuple[dict[str, Any] | str, ...] = (
    {"path": "src/build.py"},
    {"path": "src/build.py", "line": 3},
    {"line": 3, "path": "src/build.py"},
    {"q": "café", "n": [1, 2.5, None, True]},
    {},
    '{"path": "src/build.py"}',
    "not json",
)


def _content(rng: random.Random, text: str) -> list[Any]:
    """`text` as one block, or split over several, with an image or a thinking block now and then."""
    blocks: list[Any] = [
        TextBlock(text=part) for part in (text.split(" ", 1) if rng.random() < 0.2 else [text])
    ]
    if rng.random() < 0.15:
        blocks.insert(rng.randint(0, len(blocks)), ImageBlock(url="https://example.com/a.png"))
    if rng.random() < 0.15:
        blocks.insert(0, ThinkingBlock(content="thinking"))
    return blocks


def _function_history(rng: random.Random) -> list[ChatMessage]:
    messages = [ChatMessage(role=rng.choice(("system", "developer")), content="You are an agent.")]
    for _ in range(rng.randint(1, 2)):  # sometimes an earlier run before the current one
        messages.append(ChatMessage(role="user", blocks=_content(rng, "Fix the nightly build.")))
        previous: list[tuple[str, Any]] = []
        for step in range(rng.randint(0, 6)):
            role = rng.choice(
                (MessageRole.ASSISTANT, MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL)
            )
            if rng.random() < 0.15:
                messages.append(ChatMessage(role=role, blocks=_content(rng, "Thinking it over.")))
                continue
            calls = (
                previous
                if previous and rng.random() < 0.3  # a loop: the same calls again
                else [(f"tool_{rng.randrange(4)}", rng.choice(_ARGUMENTS)) for _ in range(rng.randint(1, 3))]
            )
            previous = calls
            ids = [
                None if rng.random() < 0.1 else rng.choice((f"c{step}_{n}", "call_0"))
                for n in range(len(calls))
            ]
            if rng.random() < 0.1:  # an older integration's calls, in additional_kwargs
                listed = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                    for i, (n, a) in zip(ids, calls, strict=True)
                ]
                messages.append(ChatMessage(role=role, content="", additional_kwargs={"tool_calls": listed}))
            else:
                blocks: list[Any] = [
                    ToolCallBlock(tool_call_id=i, tool_name=n, tool_kwargs=a)
                    for i, (n, a) in zip(ids, calls, strict=True)
                ]
                if rng.random() < 0.3:
                    blocks.insert(0, TextBlock(text="Let me look."))
                messages.append(ChatMessage(role=role, blocks=blocks))
            answered = list(zip(ids, calls, strict=True))
            rng.shuffle(answered)
            for call_id, (name, _) in answered[: rng.randint(0, len(answered))]:
                extra: dict[str, Any] = {**rng.choice(_FLAGS)}
                if rng.random() < 0.9:
                    extra["tool_call_id"] = call_id if rng.random() < 0.9 else "unknown-id"
                if rng.random() < 0.5:
                    extra["name"] = name
                messages.append(
                    ChatMessage(
                        role=rng.choice((MessageRole.TOOL, MessageRole.FUNCTION)),
                        blocks=_content(rng, rng.choice(_RESULTS)),
                        additional_kwargs=extra,
                    )
                )
    return messages


def _react_history(rng: random.Random) -> list[ChatMessage]:
    system = "Use this format:\nThought: ...\nAction: tool name\nAction Input: {...}"
    messages = [ChatMessage(role=rng.choice(("system", "system", "developer")), content=system)]
    messages.append(ChatMessage(role="user", blocks=_content(rng, "Where is order A-17?")))
    for _ in range(rng.randint(0, 6)):
        kind = rng.random()
        if kind < 0.15:
            messages.append(ChatMessage(role="assistant", content="I think it shipped"))
            messages.append(ChatMessage(role="user", content=rng.choice(_RETRIES) + ": no Thought found"))
            continue
        arguments = rng.choice(("{'id': 1}", '{"id": 1}', " {'sku': 'X'} ", "nothing"))
        action = f"Thought: look\nAction: {rng.choice(('lookup', 'stock'))}\nAction Input: {arguments}"
        messages.append(ChatMessage(role=rng.choice(_ASSISTANT), blocks=_content(rng, action)))
        observation = f"Observation: {rng.choice(_RESULTS)}"
        messages.append(
            ChatMessage(role="user", content=observation, additional_kwargs={**rng.choice(_FLAGS)})
        )
    if rng.random() < 0.3:
        messages.append(ChatMessage(role="user", content="Thanks. And order B-2?"))
    return messages


@pytest.mark.parametrize("style", ["function", "react"])
def test_the_context_from_converted_messages_equals_the_context_read_from_llamaindex(style: str) -> None:
    rng = random.Random(16)
    make = _function_history if style == "function" else _react_history
    seen = {"failed": 0, "ok": 0, "repeated": 0}
    for _ in range(400):
        history = make(rng)
        converted = convert_messages(history)
        for has_tools in (True, False):
            context = step_context(history, converted, has_tools=has_tools)
            expected = _reference(history, has_tools)
            assert (context.step_index, context.step_type, context.tool_history) == expected, history
        seen["failed"] += sum(not r.ok for r in context.tool_history)
        seen["ok"] += sum(r.ok for r in context.tool_history)
        seen["repeated"] += context.repeated_tool_calls > 0
    # The histories exercised what they are meant to: failures, successes and loops.
    assert min(seen.values()) > 10, seen


def test_a_converted_history_of_another_length_is_refused() -> None:
    history = [ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="hello")]
    with pytest.raises(ValueError, match="1 converted messages for 2 LlamaIndex messages"):
        step_context(history, convert_messages(history[:1]), has_tools=False)
