"""Token estimates of messages, tool definitions and whole requests, from the text estimate.

Each message adds the chat template's overhead, each image a fixed estimate and each tool call its
name and arguments; a conversation's texts are counted in one pass (`texts_tokens`). A request's
`response_schema` counts as its JSON text: providers send it with the prompt (OpenAI's
`response_format`, Anthropic's forced answer tool) and bill it as input. The estimate of plain text
itself is `gearshift._text_tokens`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .._messages import ChatRequest, ImagePart, Message, ToolSpec
from .._text_tokens import estimate_tokens, texts_tokens

__all__ = [
    "estimate_request_tokens",
    "estimate_tokens",
    "message_tokens",
    "messages_tokens",
    "schema_tokens",
    "tool_tokens",
]

_MESSAGE_OVERHEAD = 4  # role and separators, as chat templates add them
_IMAGE_TOKENS = 765  # OpenAI's estimate for a 1024x1024 image at high detail
# What a provider wraps a response schema in: Anthropic's forced answer tool has a name and a one-line
# instruction (25 tokens); OpenAI's `response_format` a name.
_SCHEMA_OVERHEAD = 32


def message_tokens(message: Message) -> int:
    """Estimated tokens of one message: its text, images and tool calls, plus the chat template's overhead."""
    content = message.content
    if isinstance(content, str):
        tokens = _MESSAGE_OVERHEAD + estimate_tokens(content)
    else:
        tokens = _MESSAGE_OVERHEAD + estimate_tokens(message.text)
        tokens += _IMAGE_TOKENS * sum(isinstance(part, ImagePart) for part in content)
    for call in message.tool_calls:
        tokens += estimate_tokens(call.name) + estimate_tokens(call.arguments) + _MESSAGE_OVERHEAD
    return tokens


def messages_tokens(messages: Iterable[Message]) -> int:
    """`sum(map(message_tokens, messages))`, with the texts of all the messages counted in one pass.

    A conversation is many short texts (turns, tool results, tool-call names and arguments), and
    counting each one costs more in calls than in counting: see `texts_tokens`.
    """
    tokens = 0
    texts: list[str] = []
    for message in messages:
        content = message.content
        if not isinstance(content, str):
            tokens += message_tokens(message)  # images: rare enough to take the plain path
            continue
        tokens += _MESSAGE_OVERHEAD
        texts.append(content)
        for call in message.tool_calls:
            tokens += _MESSAGE_OVERHEAD
            texts.append(call.name)
            texts.append(call.arguments)
    return tokens + texts_tokens(texts)


def tool_tokens(tools: Iterable[ToolSpec]) -> int:
    """Estimated tokens the tool definitions add to a request."""
    return sum(tool.token_estimate for tool in tools)


def estimate_request_tokens(request: ChatRequest) -> int:
    """Estimated input tokens of a whole request: messages, and the tool and answer schemas sent with it."""
    return messages_tokens(request.messages) + tool_tokens(request.tools) + schema_tokens(request)


def schema_tokens(request: ChatRequest) -> int:
    """Estimated tokens `request.response_schema` adds to the input (0 without one)."""
    schema = request.response_schema
    if schema is None:
        return 0
    return _SCHEMA_OVERHEAD + estimate_tokens(json.dumps(schema, separators=(",", ":")))
