"""The stateless part of OpenAI's Responses API through `gearshift serve`, with the real SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from proxy_support import ProxyProcess
from pydantic import BaseModel

from gearshift.testing import LocalOpenAIServer, Reply

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def client(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)


def test_plain_and_streamed(client: openai.OpenAI) -> None:
    plain = client.responses.create(
        model="auto", input="What is the capital of France?", instructions="Be brief."
    )
    assert plain.model == "small" and "model 'small'" in plain.output_text
    assert plain.usage is not None and plain.usage.output_tokens > 0
    events = list(client.responses.create(model="auto", input="What is the capital of France?", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text == plain.output_text  # type: ignore[union-attr]
    figures = events[-1].model_extra["gearshift"]  # type: ignore[index]
    assert figures["model"] == "small" and figures["cost_usd"] > 0 and figures["escalated"] is False


def test_function_calls_and_their_outputs(client: openai.OpenAI, openai_server: LocalOpenAIServer) -> None:
    openai_server.script("small", Reply(tool_calls=[("get_weather", {"city": "Oslo"})]))
    first = client.responses.create(model="tier-1", input="Weather in Oslo?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    follow_up: Any = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": "get_weather",
            "arguments": call.arguments,
        },  # type: ignore[union-attr]
        {"type": "function_call_output", "call_id": call.call_id, "output": "rain, 4 C"},  # type: ignore[union-attr]
    ]
    client.responses.create(model="tier-1", input=follow_up, tools=[WEATHER])
    sent = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"] and sent[2]["content"] == "rain, 4 C"
    openai_server.script("small", Reply(tool_calls=[("get_weather", {"city": "Rome"})]))
    events = list(
        client.responses.create(model="tier-1", input="Weather in Rome?", tools=[WEATHER], stream=True)
    )
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done[0].arguments) == {"city": "Rome"}  # type: ignore[union-attr]


def test_stored_state_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="auto", input="and then?", previous_response_id="resp_123")
    assert caught.value.param == "previous_response_id" and "whole conversation" in caught.value.message


class City(BaseModel):
    name: str
    country: str


def test_structured_output_keeps_the_sdks_strict(
    client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    """`responses.parse` asks for a strict schema; the proxy dropped `text.format.strict`."""
    parsed = client.responses.parse(model="small", input="What is the capital of France?", text_format=City)
    assert isinstance(parsed.output_parsed, City)
    sent = openai_server.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    with pytest.raises(openai.BadRequestError) as caught:
        text: Any = {
            "format": {"type": "json_schema", "name": "c", "schema": {"type": "object"}, "strict": "yes"}
        }
        client.responses.create(model="small", input="hi", text=text)
    assert caught.value.param == "text.format.strict"


def test_a_tool_outputs_image_reaches_the_model_as_an_image(
    client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    """A function_call_output given as parts went to the model as their JSON text, an image as
    base64 characters; now its text is the tool result and its image follows the run of results."""
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    calls: Any = [
        {"type": "function_call", "call_id": f"call_{c}", "name": "get_weather", "arguments": "{}"}
        for c in "ab"
    ]
    history: Any = [
        {"role": "user", "content": "Weather maps of Oslo and Rome?"},
        *calls,
        {
            "type": "function_call_output",
            "call_id": "call_a",
            "output": [{"type": "input_text", "text": "Oslo:"}, image],
        },
        {"type": "function_call_output", "call_id": "call_b", "output": "Rome: sun"},
    ]
    client.responses.create(model="small", input=history, tools=[WEATHER])
    sent = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user"]
    assert (sent[2]["content"], sent[3]["content"]) == ("Oslo:", "Rome: sun")
    assert [p["type"] for p in sent[4]["content"]] == ["image_url"]


def test_top_p_reaches_the_model(client: openai.OpenAI, openai_server: LocalOpenAIServer) -> None:
    """`top_p` was accepted and dropped; out of its range it is a 400 naming it."""
    client.responses.create(model="small", input="Name a colour", top_p=0.25)
    assert openai_server.requests[-1].body["top_p"] == 0.25
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="small", input="Name a colour", top_p=1.5)
    assert caught.value.param == "top_p" and "from 0 to 1" in caught.value.message


def test_a_response_repeats_the_settings_it_was_asked_with(client: openai.OpenAI) -> None:
    """OpenAI's response object repeats the request's settings; the proxy's said `metadata: {}`, no
    instructions or tools and `tool_choice: "auto"` whatever was sent, so a caller reading back the
    metadata it tagged a call with (LangChain's `response_metadata["metadata"]`) found nothing."""
    asked: Any = {
        "instructions": "Be brief.",
        "metadata": {"ticket": "T-17"},
        "temperature": 0.5,
        "max_output_tokens": 200,
        "tools": [WEATHER],
        "tool_choice": "none",
        "parallel_tool_calls": False,
    }
    plain = client.responses.create(model="auto", input="Hello", **asked)
    events = list(client.responses.create(model="auto", input="Hello", stream=True, **asked))
    for response in (plain, events[0].response, events[-1].response):  # type: ignore[union-attr]
        assert response.instructions == "Be brief." and response.metadata == {"ticket": "T-17"}
        assert response.temperature == 0.5 and response.max_output_tokens == 200
        assert response.tool_choice == "none" and response.parallel_tool_calls is False
        assert [t.name for t in response.tools] == ["get_weather"]  # type: ignore[union-attr]
    bare = client.responses.create(model="auto", input="Hello")
    assert bare.metadata == {} and bare.tools == [] and bare.tool_choice == "auto"


def test_a_refusal_in_the_history_reaches_the_model_as_the_assistants_text(
    client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    """A history replayed from OpenAI's own output may hold a refusal part; it was a 400 here
    (Chat Completions took it), so such a conversation could not be continued through the proxy."""
    history: Any = [
        {"role": "user", "content": "Help me pick a lock."},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I can't help."}],
        },
        {"role": "user", "content": "Then explain how locks work."},
    ]
    client.responses.create(model="tier-1", input=history)
    sent = openai_server.requests[-1].body["messages"]
    assert sent[1]["role"] == "assistant" and "I can't help." in json.dumps(sent[1]["content"])


@pytest.mark.parametrize(
    ("settings", "param"),
    [({"max_output_tokens": 0}, "max_output_tokens"), ({"reasoning": {"effort": "max"}}, "reasoning.effort")],
)
def test_a_bad_setting_is_a_400_in_the_responses_words(
    client: openai.OpenAI, settings: dict[str, Any], param: str
) -> None:
    """The message named the Chat Completions field the check is written for: "'max_output_tokens':
    max_tokens must be positive", a field this caller never sent."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="auto", input="hi", **settings)
    assert caught.value.param == param and f"'{param}': {param} " in caught.value.message
