"""Provider-neutral messages, tool schemas and requests: what bad input is told."""

from __future__ import annotations

import pytest

from gearshift import (
    ChatRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_a_request_without_messages_says_so() -> None:
    with pytest.raises(InvalidRequestError, match="no messages"):
        ChatRequest(messages=())


def test_a_request_with_only_a_system_message_asks_for_a_user_message() -> None:
    with pytest.raises(InvalidRequestError, match="only system messages"):
        ChatRequest(messages=(Message.system("be brief"),))


def test_max_tokens_must_be_positive() -> None:
    with pytest.raises(InvalidRequestError, match="max_tokens must be a positive integer, got 0"):
        ChatRequest(messages=(Message.user("hi"),), max_tokens=0)


@pytest.mark.parametrize("value", ["5", 5.0, True])
def test_max_tokens_must_be_an_integer(value: object) -> None:
    # A call option passed through from a caller's keyword arguments ("5" from a form or a config)
    # failed the range check with Python's own TypeError, naming neither max_tokens nor the value.
    with pytest.raises(InvalidRequestError, match=rf"max_tokens must be a positive integer, got {value!r}"):
        ChatRequest(messages=(Message.user("hi"),), max_tokens=value)  # type: ignore[arg-type]


def test_tool_choice_must_name_an_offered_tool() -> None:
    tool = ToolSpec(name="weather", parameters=WEATHER)
    with pytest.raises(InvalidRequestError, match=r"tool_choice names tool 'search'.*\(weather\)"):
        ChatRequest(messages=(Message.user("hi"),), tools=(tool,), tool_choice="search")


def test_duplicate_tool_names_are_refused() -> None:
    tool = ToolSpec(name="weather", parameters=WEATHER)
    with pytest.raises(InvalidRequestError, match="repeated: weather"):
        ChatRequest(messages=(Message.user("hi"),), tools=(tool, tool))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"name": "get weather", "parameters": WEATHER},
            r"tools\[0\] 'get weather' is malformed: name: tool name 'get weather' must be 1-64 letters",
        ),
        ({"name": "w", "parameters": {"type": "array"}}, r"parameters: .*\"type\": \"object\".*'array'"),
        ({"name": "w", "parameters": {"type": "object", "properties": []}}, "'properties' must be an object"),
        (
            {"name": "w", "parameters": {"type": "object", "properties": {"a": 3}}},
            "the schema of argument 'a' must be an object",
        ),
        (
            {"name": "w", "parameters": {"type": "object", "properties": {}, "required": ["city"]}},
            r"not in 'properties': \['city'\]",
        ),
        ({"name": "w", "parameters": WEATHER, "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_malformed_tool_schemas_name_the_tool_and_the_field(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        ToolSpec.parse(raw, where="tools[0]")


@pytest.mark.parametrize("raw", [42, "weather", ["name", "weather"], None])
def test_a_tool_that_is_not_an_object_is_refused_naming_where_and_what_it_was(raw: object) -> None:
    # It raised a bare TypeError ("'int' object is not iterable") or ValueError from dict().
    problem = rf"tools\[2\] must be an object .*got {type(raw).__name__}"
    with pytest.raises(InvalidRequestError, match=problem):
        ToolSpec.parse(raw, where="tools[2]")  # type: ignore[arg-type]


def test_openai_style_tool_definitions_are_accepted() -> None:
    tool = ToolSpec.parse({"type": "function", "function": {"name": "weather", "parameters": WEATHER}})
    assert tool.name == "weather"
    assert tool.parameters == WEATHER


def test_tool_call_arguments_that_are_not_an_object_name_the_call() -> None:
    with pytest.raises(InvalidRequestError, match=r"tool call 'weather' \(call_1\): arguments are not valid"):
        ToolCall("call_1", "weather", "{city: Paris}").parsed_arguments()
    with pytest.raises(InvalidRequestError, match="must be a JSON object, got list"):
        ToolCall("call_1", "weather", "[1, 2]").parsed_arguments()
    assert ToolCall("call_1", "weather", "").parsed_arguments() == {}


def test_multipart_text_and_images() -> None:
    message = Message.user(
        [TextPart("what is"), ImagePart(url="https://example.com/cat.png"), TextPart("this?")]
    )
    assert message.text == "what is\nthis?"
    assert message.has_images
    assert not Message.user("plain").has_images


def test_usage_adds_up() -> None:
    total = Usage(10, 5, cache_read_tokens=2) + Usage(1, 1)
    assert total == Usage(11, 6, cache_read_tokens=2)
    assert total.total_tokens == 17
