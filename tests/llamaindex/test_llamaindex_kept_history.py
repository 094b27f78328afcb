"""A history converted through the store of earlier steps' messages equals one converted anew.

`KeptHistory` reuses the conversion of a message whose values it saw before, and its calls' tool records.
Whatever the store holds, the messages, the step context and the request a call plans must be those a
fresh conversion gives: on generated agent histories of both styles sent step by step (tool errors in
every form, repeated calls, calls without ids, legacy calls, images, thinking blocks), and after
messages are edited in place between two steps.
"""

from __future__ import annotations

import random
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock, ToolCallBlock
from test_llamaindex_context_reuse import _function_history, _react_history

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, extract_signals
from gearshift.datasets import OutcomeTable
from gearshift.learning import DefaultPolicy
from gearshift.providers import ReplayProvider
from gearshift_llamaindex import RoutedLLM
from gearshift_llamaindex._context import step_context
from gearshift_llamaindex._convert import convert_messages
from gearshift_llamaindex._history import KeptHistory


def _steps(seed: int, count: int) -> list[list[ChatMessage]]:
    """The histories the steps of `count` generated runs send: each run's every prefix, in order."""
    rng = random.Random(seed)
    steps = []
    for _ in range(count):
        history = (_function_history if rng.random() < 0.7 else _react_history)(rng)
        steps.extend(history[:end] for end in range(2, len(history) + 1))  # system prompt and a turn on
    return steps


def _assert_same(kept: KeptHistory, history: list[ChatMessage]) -> Any:
    converted = kept.convert(history)
    fresh = convert_messages(history)
    assert converted == fresh, history
    for has_tools in (True, False):
        context = step_context(history, converted, has_tools=has_tools, kept=kept)
        assert context == step_context(history, fresh, has_tools=has_tools), history
    return context


def test_a_history_converted_through_the_store_equals_a_fresh_conversion() -> None:
    kept = KeptHistory()
    seen = {"failed": 0, "ok": 0, "repeated": 0}
    for history in _steps(16, 200):
        context = _assert_same(kept, history)
        seen["failed"] += sum(not r.ok for r in context.tool_history)
        seen["ok"] += sum(r.ok for r in context.tool_history)
        seen["repeated"] += context.repeated_tool_calls > 0
    assert min(seen.values()) > 10, seen
    # Steps send earlier messages again, and the store gave back what it keeps of them.
    assert len(kept._store._facts) > 50


def test_messages_edited_in_place_between_two_steps_are_converted_again() -> None:
    kept = KeptHistory()
    call = ToolCallBlock(tool_call_id="c1", tool_name="read", tool_kwargs={"path": "a.py", "line": 1})
    history = [
        ChatMessage(role="system", content="You are an agent."),
        ChatMessage(role="user", content="Fix it.", additional_kwargs={"name": "ana"}),
        ChatMessage(role="assistant", blocks=[call]),
        ChatMessage(role="tool", content="contents of a.py", additional_kwargs={"tool_call_id": "c1"}),
        ChatMessage(role="user", content="And now?"),
    ]
    tool_extra = history[3].additional_kwargs
    edits = [
        lambda: setattr(history[0].blocks[0], "text", "You are a careful agent."),
        lambda: history[1].additional_kwargs.__setitem__("name", "bea"),
        lambda: call.tool_kwargs.__setitem__("line", True),  # type: ignore[union-attr]
        lambda: call.tool_kwargs.__setitem__("line", 1.0),  # type: ignore[union-attr]
        lambda: call.tool_kwargs.__setitem__("path", "b.py"),  # type: ignore[union-attr]
        lambda: setattr(call, "tool_kwargs", '{"path": "b.py"}'),
        lambda: setattr(call, "tool_call_id", "c2"),
        lambda: setattr(call, "tool_name", "write"),
        lambda: history[2].blocks.append(ToolCallBlock(tool_call_id="c3", tool_name="ls", tool_kwargs={})),
        lambda: tool_extra.__setitem__("tool_call_id", "c2"),
        lambda: tool_extra.__setitem__("is_error", 1),
        lambda: tool_extra.__setitem__("is_error", True),
        lambda: tool_extra.__setitem__("is_error", False),
        lambda: tool_extra.__setitem__("status", "error"),
        lambda: tool_extra.pop("status"),
        lambda: setattr(history[3].blocks[0], "text", "Error: no such file — b.py"),
        lambda: setattr(history[3].blocks[0], "text", "Größe: 東京 ok"),
        lambda: history[3].blocks.append(TextBlock(text="second part")),
        lambda: tool_extra.__setitem__("name", "write"),
        lambda: setattr(history[3], "role", MessageRole.FUNCTION),
        lambda: history[1].blocks.append(ImageBlock(url="https://example.com/a.png")),
        lambda: history[2].additional_kwargs.__setitem__(
            "tool_calls", [{"id": "c9", "function": {"name": "x", "arguments": "{}"}}]
        ),
        lambda: history[2].blocks.clear(),
    ]
    _assert_same(kept, history)
    for edit in edits:
        edit()
        _assert_same(kept, history)


def test_a_step_reads_the_tool_records_kept_with_an_assistant_message_not_new_ones() -> None:
    # Every step reads every earlier call again: its record, failed or not, is built once and kept
    # with the assistant message that made the call, not built again per result on every step.
    kept = KeptHistory()
    history = [
        ChatMessage(role="system", content="You are an agent."),
        ChatMessage(role="user", content="Fix it."),
        ChatMessage(
            role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="read", tool_kwargs={})]
        ),
        ChatMessage(role="tool", content="contents of a.py", additional_kwargs={"tool_call_id": "c1"}),
        ChatMessage(
            role="assistant", blocks=[ToolCallBlock(tool_call_id="c2", tool_name="ls", tool_kwargs={})]
        ),
        ChatMessage(
            role="tool", content="Error: no such directory", additional_kwargs={"tool_call_id": "c2"}
        ),
    ]
    _assert_same(kept, history[:4])
    context = _assert_same(kept, history)
    converted = kept.convert(history)
    first, second = kept.call_records(converted[2]), kept.call_records(converted[4])
    assert first is not None and second is not None
    assert [r.ok for r in context.tool_history] == [True, False]
    assert context.tool_history[0] is first[0][1][0]  # c1 succeeded
    assert context.tool_history[1] is second[0][1][1]  # c2 failed


def test_the_store_is_bounded_and_keeps_converting_right_past_its_bound() -> None:
    kept = KeptHistory(limit=16)
    for history in _steps(17, 40):
        _assert_same(kept, history)
        assert len(kept._store) <= 16
        assert set(kept._store._facts) <= {id(m) for m in kept._store._kept.values()}


def _router() -> Router:
    registry = ModelRegistry(
        [
            ModelSpec(
                id="mini", provider="replay", model="mini", tier=0, prices=ModelPrices(input=0.15, output=0.6)
            ),
            ModelSpec(
                id="large",
                provider="replay",
                model="large",
                tier=2,
                prices=ModelPrices(input=15, output=75),
                supports_vision=True,
            ),
        ]
    )
    return Router(registry, policy=DefaultPolicy(), providers=[ReplayProvider(OutcomeTable([]))])


async def assert_plans_as_a_new_llm(llm: RoutedLLM, call: Any, history: list[ChatMessage]) -> None:
    """`call`, planned by `llm` for `history`, is the call a new LLM plans, and decides alike."""
    new = RoutedLLM(_router(), agent_id="coder")
    expected = await new._plan(history, {})
    assert call == expected
    assert extract_signals(call.request, call.context) == extract_signals(expected.request, expected.context)
    decided = new.router.decide(expected.request, expected.context)
    assert llm.router.decide(call.request, call.context) == decided


async def test_an_llms_calls_decide_as_a_new_llms_first_call_does() -> None:
    # One LLM plans every run's steps (its store fills up); a new LLM per step has seen nothing.
    llm = RoutedLLM(_router(), agent_id="coder")
    for history in _steps(18, 30):
        await assert_plans_as_a_new_llm(llm, await llm._plan(history, {}), history)
