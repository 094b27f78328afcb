"""A history converted through the store of earlier steps' messages equals one converted anew.

`KeptHistory` reuses the conversion of a message whose values it saw before, and the tool records of
its calls. Whatever the store holds, the messages, the step context and the request a step builds must
be those a fresh conversion gives: on generated agent histories sent step by step (tool errors,
repeated calls, calls without ids, invalid calls, chunks, `ChatMessage`s, image and cache-point blocks,
non-ASCII text, argument values Python finds equal and JSON does not), and after messages are edited
in place between two steps.
"""

from __future__ import annotations

import random
from typing import Any

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

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, extract_signals
from gearshift.datasets import OutcomeTable
from gearshift.learning import DefaultPolicy
from gearshift.providers import ReplayProvider
from gearshift_langchain import RoutedChatModel
from gearshift_langchain._context import StepDefaults, step_context
from gearshift_langchain._convert import convert_messages
from gearshift_langchain._history import KeptHistory

_ARGUMENTS: tuple[dict[str, Any], ...] = (
    {"path": "src/build.py"},
    {"path": "src/build.py", "line": 3},
    {"path": "src/build.py", "line": True},  # equal to line=1 in Python, not in JSON
    {"path": "src/build.py", "line": 1},
    {"path": "src/build.py", "line": 1.0},
    {"line": 3, "path": "src/build.py"},
    {"q": "café ☕ 東京", "n": None},
    {"q": "café", "n": [1, 2.5, None, True]},
    {"nested": {"a": 1}},
    {},
)
_TEXTS = (
    "done",
    "",
    "Error: build step failed with exit code 2",
    'Traceback (most recent call last):\n  File "app.py", line 3\nTypeError: bad operand',
    "Ergebnis: Größe überschritten — 東京の天気は晴れ",
    "x" * 9000,  # longer than the store keeps
)
_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def _content(rng: random.Random, text: str) -> str | list[str | dict[Any, Any]]:
    kind = rng.random()
    if kind < 0.1:
        return [
            {"type": "text", "text": text},
            {"type": "text", "text": "more", "cache_control": {"type": "ephemeral"}},
        ]
    if kind < 0.15:
        return [text, {"type": "text", "text": "second block"}]
    return text


def _user(rng: random.Random, text: str) -> BaseMessage:
    kind = rng.random()
    if kind < 0.1:
        return ChatMessage(content=text, role=rng.choice(("user", "human")))
    if kind < 0.2:
        return HumanMessage([{"type": "text", "text": text}, _IMAGE])
    if kind < 0.3:
        return HumanMessageChunk(content=text)
    return HumanMessage(_content(rng, text), name=rng.choice((None, None, "ana", "josé")))


def _step(rng: random.Random, messages: list[BaseMessage], step: int, previous: list[dict[str, Any]]) -> None:
    """One agent step appended to `messages`: a model turn and the results of its calls."""
    kind = rng.random()
    if kind < 0.08:
        messages.append(ChatMessage(content="An answer.", role=rng.choice(("assistant", "ai"))))
        return
    if kind < 0.16:
        messages.append(_user(rng, rng.choice(("Go on.", "Weiter, bitte — schneller."))))
        return
    if previous and rng.random() < 0.3:
        calls = [dict(call, args=dict(call["args"])) for call in previous]  # a loop: the same calls again
    else:
        calls = [
            {"name": f"tool_{rng.randrange(4)}", "args": dict(rng.choice(_ARGUMENTS))}
            for _ in range(rng.randint(1, 3))
        ]
    for n, call in enumerate(calls):
        call["id"] = rng.choice((f"c{step}_{n}", "call_0", "", None))
    previous[:] = calls
    ai_class = AIMessageChunk if rng.random() < 0.15 else AIMessage
    invalid = (
        [{"name": "tool_9", "args": "{not json", "id": f"bad{step}", "error": None}]
        if rng.random() < 0.1
        else []
    )
    text = rng.choice(("", "", "Let me look.", "Je regarde ça."))
    messages.append(ai_class(content=text, tool_calls=calls, invalid_tool_calls=invalid))
    answered = list(calls)
    rng.shuffle(answered)
    for call in answered[: rng.randint(0, len(answered))]:
        call_id = call["id"] if rng.random() < 0.9 else "unknown-id"
        status = "error" if rng.random() < 0.3 else "success"
        result: str | list[str | dict[Any, Any]] = rng.choice(_TEXTS)
        if rng.random() < 0.1:
            result = [{"type": "text", "text": "rows:"}, {"type": "json", "json": {"n": 2, "ü": "ß"}}]
        messages.append(ToolMessage(result, tool_call_id=call_id or "", name=call["name"], status=status))


def _runs(seed: int, count: int) -> list[list[list[BaseMessage]]]:
    """`count` runs, each the list of histories its steps send (every one the one before, grown)."""
    rng = random.Random(seed)
    runs = []
    for _ in range(count):
        messages: list[BaseMessage] = [SystemMessage("You are a coding agent.")] if rng.random() < 0.8 else []
        messages.append(_user(rng, "The nightly build fails; fix it."))
        steps, previous = [list(messages)], []
        for step in range(rng.randint(0, 8)):
            _step(rng, messages, step, previous)
            steps.append(list(messages))
        runs.append(steps)
    return runs


def _context(history: list[BaseMessage], converted: list[Any], kept: KeptHistory | None) -> Any:
    return step_context({}, history, converted, StepDefaults(), has_tools=True, kept=kept)


def test_a_history_converted_through_the_store_equals_a_fresh_conversion() -> None:
    kept = KeptHistory()
    seen = {"failed": 0, "repeated": 0, "images": 0, "cache_control": 0}
    for run in _runs(16, 300):
        for history in run:
            converted = kept.convert(history)
            fresh = convert_messages(history)
            assert converted == fresh, history
            context = _context(history, converted, kept)
            assert context == _context(history, fresh, None), history
            seen["failed"] += sum(not r.ok for r in context.tool_history)
            seen["repeated"] += context.repeated_tool_calls > 0
            seen["images"] += any(m.has_images for m in converted)
            seen["cache_control"] += any(m.cache_control for m in converted)
    assert min(seen.values()) > 10, seen
    # Steps send earlier messages again, and the store gave them back.
    assert len(kept._store._facts) > 50


def test_messages_edited_in_place_between_two_steps_are_converted_again() -> None:
    kept = KeptHistory()
    call = {"name": "read", "args": {"path": "a.py", "line": 1}, "id": "c1"}
    history: list[BaseMessage] = [
        SystemMessage("You are a coding agent."),
        HumanMessage("Fix it.", name="ana"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("contents of a.py", tool_call_id="c1", name="read"),
        HumanMessage("And now?"),
    ]
    edits = [
        lambda: setattr(history[0], "content", "You are a careful agent."),
        lambda: setattr(history[1], "name", "bea"),
        lambda: setattr(history[2], "name", "researcher"),  # the agent that spoke
        lambda: history[2].tool_calls[0]["args"].__setitem__("line", True),
        lambda: history[2].tool_calls[0]["args"].__setitem__("line", 1.0),
        lambda: history[2].tool_calls[0]["args"].__setitem__("path", "b.py"),
        lambda: history[2].tool_calls[0].__setitem__("id", "c2"),
        lambda: history[2].tool_calls[0].__setitem__("name", "write"),
        lambda: history[2].tool_calls.append({"name": "read", "args": {"path": "c.py"}, "id": "c3"}),
        lambda: setattr(history[3], "status", "error"),
        lambda: setattr(history[3], "tool_call_id", "c2"),
        lambda: setattr(history[3], "content", "Error: no such file — b.py"),
        lambda: setattr(
            history[3], "content", [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]
        ),
        lambda: setattr(history[1], "content", [{"type": "text", "text": "Fix it."}, _IMAGE]),
    ]
    assert kept.convert(history) == convert_messages(history)
    for edit in edits:
        edit()
        converted = kept.convert(history)
        assert converted == convert_messages(history)
        assert _context(history, converted, kept) == _context(history, convert_messages(history), None)


def test_the_store_is_bounded_and_keeps_converting_right_past_its_bound() -> None:
    kept = KeptHistory(limit=16)
    for run in _runs(17, 60):
        for history in run:
            converted = kept.convert(history)
            assert converted == convert_messages(history)
            assert _context(history, converted, kept) == _context(history, convert_messages(history), None)
            assert len(kept._store) <= 16
            assert set(kept._store._facts) <= {id(m) for m in kept._store._kept.values()}


def _registry() -> ModelRegistry:
    return ModelRegistry(
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


def _router() -> Router:
    return Router(_registry(), policy=DefaultPolicy(), providers=[ReplayProvider(OutcomeTable([]))])


def test_a_models_steps_decide_as_a_new_models_first_step_does() -> None:
    # One model sends every run's steps (its store fills up); a new model per step has seen nothing.
    model = RoutedChatModel(router=_router(), agent_id="coder")
    tools = [
        {
            "type": "function",
            "function": {"name": f"tool_{i}", "description": "A tool.", "parameters": {"type": "object"}},
        }
        for i in range(4)
    ]
    for run in _runs(18, 40):
        for history in run:
            step = model._step(history, None, {"thread_id": "t"}, {"tools": tools})
            new = RoutedChatModel(router=_router(), agent_id="coder")
            expected = new._step(history, None, {"thread_id": "t"}, {"tools": tools})
            assert step.request == expected.request
            assert step.context == expected.context
            assert extract_signals(step.request, step.context) == extract_signals(
                expected.request, expected.context
            )
            assert model.router.decide(step.request, step.context) == new.router.decide(
                expected.request, expected.context
            )
