"""LlamaIndex chat messages to gearshift messages: block order, skipped and refused blocks, tool turns."""

from __future__ import annotations

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
from gearshift_llamaindex._convert import to_messages


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
