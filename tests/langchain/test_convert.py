"""LangChain <-> gearshift conversion: messages, content blocks, tool-call pairing, tools, answers, chunks."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from gearshift import (
    ChatResponse,
    Decision,
    ImagePart,
    InvalidRequestError,
    Message,
    RoutedResponse,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gearshift._tool_pairing import MISSING_RESULT
from gearshift.routing._records import Attempt
from gearshift.routing._routed import Escalation
from gearshift_langchain._convert import (
    ToolSpecCache,
    to_messages,
    to_response_schema,
    to_tool_choice,
    to_tool_specs,
)
from gearshift_langchain._output import chat_result, delta_chunk, final_chunk

PORTABLE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _call(
    call_id: str | None, name: str = "search", args: dict[str, object] | None = None
) -> dict[str, object]:
    return {"name": name, "args": args or {"q": "x"}, "id": call_id, "type": "tool_call"}


# -- messages in ---------------------------------------------------------------------------------------


def test_roles_names_and_tool_results_are_carried_over() -> None:
    messages = to_messages(
        [
            SystemMessage("be brief"),
            HumanMessage("hi", name="ada"),
            AIMessage("let me look", tool_calls=[_call("call_1", args={"q": "ünïcode"})], name="scout"),
            ToolMessage("boom", tool_call_id="call_1", status="error"),
            ChatMessage(role="developer", content="rules"),
        ]
    )
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "system"]
    assert (messages[1].name, messages[2].name) == ("ada", "scout")
    assert messages[2].tool_calls == (ToolCall("call_1", "search", '{"q": "ünïcode"}'),)
    assert messages[3] == Message.tool("call_1", "boom", name="search", is_error=True)


def test_images_in_every_shape_become_image_parts() -> None:
    (message,) = to_messages(
        [
            HumanMessage(
                [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"},
                    },
                    {"type": "image", "base64": "iVBO", "mime_type": "image/png"},
                    {"type": "image", "url": "https://example.com/b.webp"},
                ]
            )
        ]
    )
    assert message.content == (
        TextPart("what is this?"),
        ImagePart(data="QUJD", media_type="image/jpeg"),
        ImagePart(url="https://example.com/a.png"),
        ImagePart(data="R0lG", media_type="image/gif"),
        ImagePart(data="iVBO", media_type="image/png"),
        ImagePart(url="https://example.com/b.webp"),
    )


def test_blocks_gearshift_cannot_send_are_refused_by_name() -> None:
    with pytest.raises(InvalidRequestError, match="'file' block cannot be routed"):
        to_messages([HumanMessage([{"type": "file", "base64": "JVBE", "mime_type": "application/pdf"}])])


def test_ai_content_keeps_text_and_leaves_tool_use_and_thinking_blocks_to_their_fields() -> None:
    (_, message, _) = to_messages(
        [
            HumanMessage("q"),
            AIMessage(
                [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "x"}},
                ],
                tool_calls=[_call("toolu_1")],
            ),
            ToolMessage(
                [{"type": "text", "text": "found"}, {"type": "json", "json": {"n": 1}}],
                tool_call_id="toolu_1",
            ),
        ]
    )
    assert message.text == "Let me check."
    assert [c.id for c in message.tool_calls] == ["toolu_1"]


def test_tool_results_with_non_text_blocks_are_sent_as_text() -> None:
    messages = to_messages(
        [
            HumanMessage("q"),
            AIMessage("", tool_calls=[_call("c1")]),
            ToolMessage(
                [
                    {"type": "text", "text": "found"},
                    {"type": "json", "json": {"n": 1}},
                    {"type": "image", "url": "u"},
                ],
                tool_call_id="c1",
            ),
        ]
    )
    assert messages[2].text == 'found\n{"n": 1}\n[image omitted: gearshift sends tool results as text]'


def test_a_tool_call_with_arguments_that_are_not_json_is_still_sent() -> None:
    message = AIMessage(
        "",
        invalid_tool_calls=[
            {"name": "search", "args": "{oops", "id": "c1", "error": "bad", "type": "invalid_tool_call"}
        ],
    )
    (_, sent, result) = to_messages(
        [HumanMessage("q"), message, ToolMessage("bad args", tool_call_id="c1", status="error")]
    )
    assert sent.tool_calls == (ToolCall("c1", "search", "{oops"),)
    assert result.tool_call_id == "c1" and result.is_error


# -- tool-call ids and pairing -------------------------------------------------------------------------


def test_ids_every_provider_accepts_are_kept_and_others_rewritten_in_call_and_result_alike() -> None:
    messages = to_messages(
        [
            HumanMessage("q"),
            AIMessage("", tool_calls=[_call("call_abc"), _call("functions.search:0", args={"q": "y"})]),
            ToolMessage("r1", tool_call_id="call_abc"),
            ToolMessage("r2", tool_call_id="functions.search:0"),
        ]
    )
    calls = messages[1].tool_calls
    assert calls[0].id == "call_abc"
    assert calls[1].id != "functions.search:0" and PORTABLE.match(calls[1].id)
    assert [m.tool_call_id for m in messages[2:]] == [c.id for c in calls]
    assert [m.text for m in messages[2:]] == ["r1", "r2"]
    assert (
        to_messages(  # deterministic: the next step derives the same id, nothing is remembered
            [HumanMessage("q"), AIMessage("", tool_calls=[_call("functions.search:0")])]
        )[1]
        .tool_calls[0]
        .id
        == calls[1].id
    )


def test_an_id_reused_in_a_later_turn_is_made_unique() -> None:
    messages = to_messages(
        [
            HumanMessage("q"),
            AIMessage("", tool_calls=[_call("call_0")]),
            ToolMessage("first", tool_call_id="call_0"),
            AIMessage("", tool_calls=[_call("call_0")]),
            ToolMessage("second", tool_call_id="call_0"),
        ]
    )
    first, second = messages[1].tool_calls[0].id, messages[3].tool_calls[0].id
    assert first == "call_0" and second != "call_0" and PORTABLE.match(second)
    assert (messages[2].tool_call_id, messages[2].text) == (first, "first")
    assert (messages[4].tool_call_id, messages[4].text) == (second, "second")


def test_unanswered_calls_get_a_result_and_stray_results_become_user_text() -> None:
    messages = to_messages(
        [
            HumanMessage("q"),
            ToolMessage("left over", tool_call_id="gone", name="search"),
            AIMessage("", tool_calls=[_call("c1"), _call("c2", args={"q": "2"})]),
            ToolMessage("answer 2", tool_call_id="c2"),
            HumanMessage("and?"),
        ]
    )
    assert [m.role for m in messages] == ["user", "user", "assistant", "tool", "tool", "user"]
    assert messages[1].text == "[Result of an earlier call to tool 'search']\nleft over"
    assert (messages[3].tool_call_id, messages[3].text) == ("c1", MISSING_RESULT)
    assert (messages[4].tool_call_id, messages[4].text) == ("c2", "answer 2")


# -- tools, tool choice, response format ---------------------------------------------------------------


def test_tools_and_every_tool_choice_spelling() -> None:
    tools = to_tool_specs(
        [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    )
    assert [t.name for t in tools] == ["search"]
    assert to_tool_choice("any", tools) == to_tool_choice(True, tools) == "required"
    assert to_tool_choice({"type": "function", "function": {"name": "search"}}, tools) == "search"
    assert to_tool_choice("auto", tools) == "auto" and to_tool_choice(None, tools) is None
    with pytest.raises(InvalidRequestError, match="tool_choice must be"):
        to_tool_choice(3, tools)


def test_anthropic_tool_choice_dicts_are_read_as_chatanthropic_users_write_them() -> None:
    # ChatAnthropic takes `{"type": "any" | "auto" | "none"}` and `{"type": "tool", "name": ...}`; a
    # routed call may go to Anthropic, yet only the named form was read and `{"type": "any"}` was
    # refused with "names no tool".
    tools = to_tool_specs(
        [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    )
    assert to_tool_choice({"type": "any"}, tools) == "required"
    assert to_tool_choice({"type": "auto"}, tools) == "auto"
    assert to_tool_choice({"type": "none"}, tools) == "none"
    assert to_tool_choice({"type": "tool", "name": "search"}, tools) == "search"
    with pytest.raises(InvalidRequestError, match=r"tool_choice \{'type': 'tool'\} names no tool"):
        to_tool_choice({"type": "tool"}, tools)


def _search_tool(description: str = "Search the web.") -> dict[str, object]:
    parameters = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    return {
        "type": "function",
        "function": {"name": "search", "description": description, "parameters": parameters},
    }


def test_tool_specs_are_reused_while_the_tool_dicts_stay_the_same() -> None:
    cache = ToolSpecCache()
    tool = _search_tool()
    (first,) = cache.specs([tool])
    assert first == to_tool_specs([tool])[0]
    assert cache.specs([tool])[0] is first  # the same dict on the next step
    assert cache.specs([_search_tool()])[0] is first  # a dict built anew for the step, equal
    tool["function"]["parameters"]["properties"]["q"]["type"] = "integer"  # type: ignore[index]
    (edited,) = cache.specs([tool])  # edited in place: parsed again
    assert edited is not first and edited.parameters["properties"]["q"]["type"] == "integer"
    (renamed,) = cache.specs([_search_tool("Search the news.")])
    assert renamed.description == "Search the news."
    with pytest.raises(InvalidRequestError, match=r"tool 1 'bad name' is malformed"):
        cache.specs([tool, {"type": "function", "function": {"name": "bad name"}}])
    assert cache.specs(None) == cache.specs([]) == ()


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert (
        to_response_schema({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}) == schema
    )
    assert to_response_schema({"type": "json_object"}) == {"type": "object"}
    assert to_response_schema(None) is None and to_response_schema({"type": "text"}) is None
    with pytest.raises(InvalidRequestError, match="not supported"):
        to_response_schema({"type": "grammar"})


# -- answers out ---------------------------------------------------------------------------------------


def _routed(message: Message, *, escalated: bool = False) -> RoutedResponse:
    usage = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=4)
    response = ChatResponse(message, "large", "large-2025", usage, "stop", 0.002, {"response_id": "r-1"})
    attempts = (Attempt("large", "local", True, usage, 0.002, 1.0),)
    escalations = (Escalation("small", "large", "too hard", "self"),) if escalated else ()
    return RoutedResponse(response, Decision("small", 1, reasons=("easy",)), attempts, "req-1", escalations)


def test_an_answer_names_the_model_that_gave_it_with_usage_and_the_routing_record() -> None:
    call = ToolCall("call_9", "search", '{"q": "x"}')
    broken = ToolCall("call_10", "search", "{nope")
    result = chat_result(_routed(Message.assistant("hi", [call, broken]), escalated=True), tier=2)
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [{"name": "search", "args": {"q": "x"}, "id": "call_9", "type": "tool_call"}]
    assert message.invalid_tool_calls[0]["id"] == "call_10"
    assert message.usage_metadata == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_token_details": {"cache_read": 4, "cache_creation": 0},
    }
    metadata = message.response_metadata
    assert metadata["model_name"] == "large-2025" and metadata["id"] == "r-1"
    routed = metadata["gearshift"]
    assert (routed["model_id"], routed["tier"], routed["decided_model"]) == ("large", 2, "small")
    assert routed["escalations"] == [{"from": "small", "to": "large", "reason": "too hard", "source": "self"}]


def test_streamed_pieces_add_up_to_the_same_message() -> None:
    chunks = [
        delta_chunk(TextDelta("Hel")),
        delta_chunk(TextDelta("lo")),
        delta_chunk(ToolCallDelta(0, "call_1", "search", '{"q"')),
        delta_chunk(ToolCallDelta(0, None, None, ': "x"}')),
        final_chunk(_routed(Message.assistant("Hello")), tier=2),
    ]
    total = chunks[0].message
    for chunk in chunks[1:]:
        total = total + chunk.message
    assert isinstance(total, AIMessageChunk)
    assert total.text == "Hello"
    assert total.tool_calls == [{"name": "search", "args": {"q": "x"}, "id": "call_1", "type": "tool_call"}]
    assert total.response_metadata["model_name"] == "large-2025"  # set once, so never concatenated
    assert total.usage_metadata is not None and total.usage_metadata["total_tokens"] == 15
    assert total.chunk_position == "last"


def test_a_tool_dict_whose_value_changes_type_is_parsed_again() -> None:
    # Python finds 1 == True == 1.0, but a provider is sent the schema as JSON: 1, true and 1.0 differ.
    cache = ToolSpecCache()
    tool = _search_tool()
    tool["function"]["parameters"]["properties"]["q"]["default"] = 1  # type: ignore[index]
    (first,) = cache.specs([tool])
    for value in (True, 1.0):
        changed = _search_tool()
        changed["function"]["parameters"]["properties"]["q"]["default"] = value  # type: ignore[index]
        (spec,) = cache.specs([changed])
        sent = spec.parameters["properties"]["q"]["default"]
        assert type(sent) is type(value) and json.dumps(sent) == json.dumps(value)
    assert cache.specs([copy.deepcopy(tool)])[0] is not first  # parsed again after the change...
    again = cache.specs([copy.deepcopy(tool)])[0]
    assert cache.specs([copy.deepcopy(tool)])[0] is again  # ...and reused while it stays the same


def test_a_list_of_tools_sent_again_gets_the_specs_a_fresh_parse_gives() -> None:
    # The last list of each length is compared whole: edits in place, other orders, another tool of the
    # same count and values Python finds equal but JSON does not must all give a fresh parse's specs.
    cache = ToolSpecCache()
    tools: list[dict[str, Any]] = [_search_tool(f"Search {n}.") for n in range(3)]
    for n, tool in enumerate(tools):
        tool["function"]["name"] = f"search_{n}"  # type: ignore[index]
    tools[1]["function"]["parameters"]["properties"]["q"]["default"] = 1  # type: ignore[index]

    def same_as_fresh(offered: list[dict[str, Any]]) -> tuple[object, ...]:
        specs = cache.specs(offered)
        fresh = to_tool_specs(copy.deepcopy(offered))
        assert specs == fresh
        assert [json.dumps(s.parameters) for s in specs] == [json.dumps(s.parameters) for s in fresh]
        return specs

    first = same_as_fresh(tools)
    assert same_as_fresh(copy.deepcopy(tools)) is first  # equal dicts built anew: the whole list reused
    for value in (True, 1.0, 2):
        tools[1]["function"]["parameters"]["properties"]["q"]["default"] = value  # type: ignore[index]
        assert same_as_fresh(tools) is not first
    same_as_fresh(list(reversed(tools)))
    other = _search_tool("Find.")
    other["function"]["name"] = "find"  # type: ignore[index]
    same_as_fresh([tools[0], other, tools[2]])
    tools[2]["function"]["description"] = "Edited in place."  # type: ignore[index]
    assert same_as_fresh(tools)[2].description == "Edited in place."
    assert same_as_fresh(tools[:2]) == tuple(to_tool_specs(tools[:2]))
