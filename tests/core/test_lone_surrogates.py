"""A lone UTF-16 surrogate in a prompt (json.loads lets `"\\ud800"` through) is no text: the router
refuses it with an `InvalidRequestError` naming the message and field, before any model is asked,
rather than crashing on the prompt deep in the signals or the provider's encoding."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gearshift import (
    ChatRequest,
    InvalidRequestError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
)
from gearshift._messages import ImagePart, TextPart, ToolCall, ToolSpec
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer

_OK = Message.user("hello")
_CASES = [
    ("a \ud800 b", "messages[0].content"),
    ([_OK, Message.user("x\udc00")], "messages[1].content"),
    ([_OK, Message.user((TextPart("fine"), TextPart("bad \udfff")))], "messages[1].content[1].text"),
    ([Message.user((ImagePart(url="https://x/\ud800.png"),))], "messages[0].content[0].url"),
    (
        [_OK, Message.assistant(tool_calls=(ToolCall("c1", "look", '{"q": "\ud800"}'),)), _OK],
        "messages[1].tool_calls[0].arguments",
    ),
    ([_OK, Message(role="tool", content="r", tool_call_id="c\ud800")], "messages[1].tool_call_id"),
    ([Message(role="user", content="hi", name="\ud800")], "messages[0].name"),
]


@pytest.fixture
def served() -> Iterator[tuple[LocalOpenAIServer, Router]]:
    with LocalOpenAIServer(models=("small", "large")) as server:
        registry = ModelRegistry(
            ModelSpec(
                id=name, provider="openai", model=name, tier=tier, prices=ModelPrices(input=tier, output=tier)
            )
            for name, tier in (("small", 1), ("large", 2))
        )
        provider = OpenAIProvider(base_url=server.base_url, require_key=False)
        router = Router(registry, policy=SignalScorer(), providers=[provider])
        yield server, router
        router.close()


@pytest.mark.parametrize(("prompt", "where"), _CASES)
def test_a_lone_surrogate_is_refused_naming_where_before_any_call(
    served: tuple[LocalOpenAIServer, Router], prompt: str | list[Message], where: str
) -> None:
    server, router = served
    for call in (router.decide, router.complete):
        with pytest.raises(InvalidRequestError, match="^" + re.escape(where) + ": .*surrogate"):
            call(prompt)
    assert server.requests == []


async def test_acomplete_refuses_a_lone_surrogate_before_any_call(
    served: tuple[LocalOpenAIServer, Router],
) -> None:
    server, router = served
    with pytest.raises(InvalidRequestError, match=r"^messages\[0\]\.content: "):
        await router.acomplete("a \ud800 b")
    assert server.requests == []


def test_a_surrogate_pair_is_text_and_a_stop_sequence_with_a_lone_one_is_refused(
    served: tuple[LocalOpenAIServer, Router],
) -> None:
    _, router = served
    assert router.complete("hi \U0001f600").response.text  # one character, written as a pair in UTF-16 only
    with pytest.raises(InvalidRequestError, match=r"^stop\[1\]: "):
        ChatRequest(messages=(_OK,), stop=("end", "\ud800"))


def test_a_tool_or_response_schema_with_a_lone_surrogate_is_refused_naming_the_field(
    served: tuple[LocalOpenAIServer, Router],
) -> None:
    server, router = served
    with pytest.raises(InvalidRequestError, match=r"tool 'look' is malformed: description: .*surrogate"):
        ToolSpec.parse({"name": "look", "description": "d \ud800"})
    with pytest.raises(InvalidRequestError, match=r"parameters: properties\.q\.description: .*surrogate"):
        ToolSpec.parse(
            {"name": "look", "parameters": {"type": "object", "properties": {"q": {"description": "\udc00"}}}}
        )
    schema = {"type": "object", "properties": {"a": {"type": "string", "description": "\ud800"}}}
    with pytest.raises(InvalidRequestError, match=r"^response_schema\.properties\.a\.description: "):
        router.complete(ChatRequest(messages=(_OK,), response_schema=schema))
    assert server.requests == []


def test_only_short_clean_texts_are_kept_between_calls() -> None:
    from gearshift import _surrogates

    short, long = "é" * 10, "é" * (_surrogates._MAX_KEPT_CHARACTERS + 1)
    assert not _surrogates.has_lone_surrogate(short) and not _surrogates.has_lone_surrogate(long)
    # A process reading long documents must not hold a thousand of them.
    assert short in _surrogates._clean and long not in _surrogates._clean
    assert _surrogates.has_lone_surrogate(long[:-1] + "\ud800")
