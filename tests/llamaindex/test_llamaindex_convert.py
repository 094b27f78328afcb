"""LlamaIndex chat messages to gearshift messages: block order, skipped and refused blocks, tool turns."""

from __future__ import annotations

import asyncio
import io
import threading
from dataclasses import dataclass
from typing import ClassVar

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from gearshift import ImagePart, InvalidRequestError, Message, TextPart, ToolCall
from gearshift_llamaindex._calls import PlannedCall, ToolSpecCache, plan_call
from gearshift_llamaindex._convert import FilesToRead, convert_messages, to_messages


@dataclass
class _Defaults:
    """What a `RoutedLLM` gives a call that says nothing."""

    agent_id: str | None = None
    run_id: str | None = None
    budget_keys: tuple[str, ...] = ()
    expected_steps: int | None = None
    self_escalation: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_k: int | None = None
    reasoning_effort: str | None = None


_DEFAULTS = _Defaults()


def test_text_and_images_keep_their_order_and_provider_hints_are_left_out() -> None:
    blocks = [
        ThinkingBlock(content="the user wants a comparison"),
        TextBlock(text="Compare"),
        TextBlock(text="these two:"),
        ImageBlock(url="https://example.com/a.png"),
        CachePoint(cache_control=CacheControl(type="ephemeral")),
        TextBlock(text="and"),
        ImageBlock(url="https://example.com/b.png", image_mimetype="image/jpeg"),
    ]
    (message,) = to_messages([ChatMessage(role="user", blocks=blocks)])
    assert message.content == (
        TextPart("Compare"),
        TextPart("these two:"),
        ImagePart(url="https://example.com/a.png"),
        TextPart("and"),
        ImagePart(url="https://example.com/b.png", media_type="image/jpeg"),
    )
    assert message.text == "Compare\nthese two:\nand"
    (plain,) = to_messages([ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")])])
    assert plain.content == "a\nb"


def test_tool_turns_and_refused_blocks() -> None:
    call = ToolCallBlock(tool_call_id="c1", tool_name="search", tool_kwargs={"q": "tides"})
    history = [
        ChatMessage(role="user", content="When is high tide?"),
        ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text="Looking."), call]),
        ChatMessage(
            role="tool",
            content="Error: no station",
            additional_kwargs={"tool_call_id": "c1", "name": "search"},
        ),
    ]
    user, assistant, result = to_messages(history)
    assert user == Message.user("When is high tide?")
    assert assistant == Message.assistant("Looking.", [ToolCall("c1", "search", '{"q": "tides"}')])
    assert result == Message.tool("c1", "Error: no station", name="search")
    audio = ChatMessage(role="user", blocks=[TextBlock(text="hear this"), AudioBlock(audio=b"AAAA")])
    with pytest.raises(InvalidRequestError, match=r"message 1: .* a audio block cannot be sent"):
        to_messages([history[0], audio])


class _Stream(io.BytesIO):
    """An image stream that notes the thread it is read on."""

    threads: ClassVar[list[int]] = []

    def read(self, size: int | None = -1) -> bytes:
        self.threads.append(threading.get_ident())
        return super().read(size)


def test_an_image_read_from_a_stream_is_read_off_the_event_loop_and_others_convert_on_it() -> None:
    by_url = ChatMessage(
        role="user", blocks=[TextBlock(text="see"), ImageBlock(url="https://example.com/a.png")]
    )
    streamed = ChatMessage(
        role="user", blocks=[ImageBlock(image=_Stream(b"iVBORw0K"), image_mimetype="image/png")]
    )
    assert convert_messages([by_url], read_files=False) == convert_messages([by_url])
    with pytest.raises(FilesToRead):
        convert_messages([by_url, streamed], read_files=False)
    assert _Stream.threads == []  # refused before anything was read

    async def plan() -> tuple[int, PlannedCall]:
        call = await plan_call([by_url, streamed], {}, _DEFAULTS, ToolSpecCache())
        return threading.get_ident(), call

    loop_thread, call = asyncio.run(plan())
    assert _Stream.threads and loop_thread not in _Stream.threads
    assert call.request.messages[1] == Message.user((ImagePart(data="iVBORw0K", media_type="image/png"),))
