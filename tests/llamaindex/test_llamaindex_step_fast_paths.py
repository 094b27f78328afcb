"""The short ways an agent step takes through the adapter give what the long ways give.

A tool result of one text block converts without the general walk over blocks; whether a result's text
reads as a failure is kept per text; `ToolSpec`s among a call's tools are told apart per class. Each
must give the message, the step context and the decision the general path gives: a one-block result
equals the same result with a block the walk skips, a context read with the failures kept equals one
read with nothing kept (the same text under other flags, edited texts, texts past the store's bounds),
and a call's specs keep `ToolSpec`s (subclasses too) in their place among LlamaIndex tools.
"""

from __future__ import annotations

import random
from typing import Any

from llama_index.core.base.llms.types import CacheControl, CachePoint, ChatMessage, MessageRole, TextBlock
from llama_index.core.tools import FunctionTool
from test_llamaindex_kept_history import _router, _steps, assert_plans_as_a_new_llm

from gearshift import ToolSpec
from gearshift_llamaindex import RoutedLLM
from gearshift_llamaindex import _context as context_module
from gearshift_llamaindex._calls import ToolSpecCache
from gearshift_llamaindex._context import failed, step_context
from gearshift_llamaindex._convert import convert_message, convert_messages

_TEXTS = (
    "shipped on Monday",
    "",
    "Error: quota exhausted",
    "Encountered error: division by zero",
    '{"error": "not found"}',
    "Ergebnis: Größe überschritten — 東京の天気は晴れ ☕",
    "command failed with exit code 2",
    "x" * 5000,  # longer than the failures store keeps
    "Error: " + "y" * 5000,
)
_EXTRAS: tuple[dict[str, Any], ...] = (
    {},
    {"tool_call_id": "c1"},
    {"tool_call_id": "c1", "name": "read"},
    {"tool_call_id": 7, "tool_name": "read"},
    {"tool_call_id": None, "name": "josé", "is_error": True},
    {"tool_call_id": "c2", "is_error": "yes"},
    {"tool_call_id": "c2", "is_error": 0, "status": "error"},
    {"tool_call_id": "ü-1", "name": "read", "is_error": False},
    {"tool_call_id": "c3", "tool_calls": [{"id": "c3", "function": {"name": "read", "arguments": "{}"}}]},
)


def test_a_one_block_tool_result_converts_as_the_general_walk_converts_it() -> None:
    skipped = CachePoint(cache_control=CacheControl(type="ephemeral"))  # a block the walk leaves out
    for text in _TEXTS:
        for extra in _EXTRAS:
            for role in (MessageRole.TOOL, MessageRole.FUNCTION, "tool"):
                one = ChatMessage(role=role, blocks=[TextBlock(text=text)], additional_kwargs=dict(extra))
                walked = ChatMessage(
                    role=role, blocks=[TextBlock(text=text), skipped], additional_kwargs=dict(extra)
                )
                assert convert_message(one, 3) == convert_message(walked, 3), (text[:20], extra)


def _with_nothing_kept(history: list[ChatMessage], has_tools: bool) -> Any:
    kept = dict(context_module._FAILED_TEXTS)
    context_module._FAILED_TEXTS.clear()
    try:
        return step_context(history, convert_messages(history), has_tools=has_tools)
    finally:
        context_module._FAILED_TEXTS.clear()
        context_module._FAILED_TEXTS.update(kept)


def test_a_context_read_with_failures_kept_equals_one_read_with_nothing_kept() -> None:
    rng = random.Random(21)
    seen_failed = 0
    for _ in range(300):
        history = [ChatMessage(role="system", content="An agent."), ChatMessage(role="user", content="Go")]
        for _ in range(rng.randint(1, 6)):
            text, extra = rng.choice(_TEXTS), rng.choice(_EXTRAS)
            history.append(ChatMessage(role="tool", content=text, additional_kwargs=dict(extra)))
        context = step_context(history, convert_messages(history), has_tools=True)
        assert context == _with_nothing_kept(history, True)
        seen_failed += sum(not record.ok for record in context.tool_history)
        # A result edited in place reads as its new text says.
        edited = history[-1]
        edited.blocks = [TextBlock(text=rng.choice(_TEXTS))]
        assert step_context(history, convert_messages(history), has_tools=True) == _with_nothing_kept(
            history, True
        )
    assert seen_failed > 100
    assert all(len(text) <= context_module._MAX_KEPT_CHARACTERS for text in context_module._FAILED_TEXTS)


def test_the_failures_store_starts_over_past_its_bound_and_still_reads_right() -> None:
    for n in range(context_module._MAX_KEPT + 50):
        text = f"Error: case {n}" if n % 3 == 0 else f"result {n}"
        assert failed(text) is (n % 3 == 0)
        assert failed(text, {"is_error": True}) is True
        assert len(context_module._FAILED_TEXTS) <= context_module._MAX_KEPT


async def test_an_llms_steps_decide_as_a_new_llm_with_nothing_kept_decides() -> None:
    llm = RoutedLLM(_router(), agent_id="coder")
    for history in _steps(22, 30):
        call = await llm._plan(history, {})
        context_module._FAILED_TEXTS.clear()
        await assert_plans_as_a_new_llm(llm, call, history)


class _NamedSpec(ToolSpec):
    """A subclass of `ToolSpec`, as an application may define."""


def _look(path: str) -> str:
    """Looks at a file."""
    return path


def test_tool_specs_among_llamaindex_tools_keep_their_place() -> None:
    spec = ToolSpec(name="search", description="Searches.", parameters={"type": "object"})
    named = _NamedSpec(name="named", description="Named.", parameters={"type": "object"})
    tool = FunctionTool.from_defaults(fn=_look, name="look")
    cache = ToolSpecCache()
    for _ in range(2):  # the second time from the cache
        specs = cache.specs([tool, spec, named, tool])
        assert specs[1] is spec and specs[2] is named
        assert specs[0] == specs[3] and specs[0].name == "look"
        assert specs[0].parameters["properties"] == {"path": {"title": "Path", "type": "string"}}
