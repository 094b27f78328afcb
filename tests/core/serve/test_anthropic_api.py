"""The real `anthropic` SDK against `gearshift serve`: plain, streamed, tools, system, images,
count_tokens, and errors in Anthropic's format."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from proxy_support import ProxyProcess
from pydantic import BaseModel

from gearshift import ChatRequest, Message, estimate_request_tokens
from gearshift.testing import Fail, LocalAnthropicServer, LocalOpenAIServer, Reply

HELLO: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def client(proxy: ProxyProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused-on-loopback", max_retries=0)


def test_plain_message_routed_to_an_openai_model(client: anthropic.Anthropic, records: Any) -> None:
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=200, system="Be brief.", messages=HELLO, metadata={"user_id": "bob"}
    )
    message = raw.parse()
    assert message.model == "small" == raw.headers["x-gearshift-model"]
    assert message.content[0].type == "text" and "model 'small'" in message.content[0].text
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    assert decision["agent_id"] == "bob"


def test_forced_anthropic_model(client: anthropic.Anthropic, anthropic_server: LocalAnthropicServer) -> None:
    message = client.messages.create(model="claude-large", max_tokens=100, messages=HELLO)
    assert message.model == "claude-large"
    assert anthropic_server.requests[-1].body["model"] == "claude-large"


def test_stream_matches_the_plain_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="auto", max_tokens=200, messages=HELLO)
    with client.messages.stream(model="auto", max_tokens=200, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == plain.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.model == "small"


def test_message_start_reports_the_input_tokens_and_message_delta_the_real_count(
    client: anthropic.Anthropic,
) -> None:
    """`message_start` said 0 input tokens, where Anthropic's API reports them: code reading the
    prompt size from it (before the answer ends) read nothing. It carries gearshift's estimate now."""
    plain = client.messages.create(model="auto", max_tokens=200, messages=HELLO)
    events = list(client.messages.create(model="auto", max_tokens=200, messages=HELLO, stream=True))
    [start] = [e for e in events if e.type == "message_start"]
    [delta] = [e for e in events if e.type == "message_delta"]
    estimate = estimate_request_tokens(ChatRequest((Message.user(HELLO[0]["content"]),)))
    assert start.message.usage.input_tokens == estimate > 0
    assert delta.usage.input_tokens == plain.usage.input_tokens > 0
    with client.messages.stream(model="auto", max_tokens=200, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens == plain.usage.input_tokens


def test_a_streams_final_figures_ride_in_its_message_delta(client: anthropic.Anthropic, records: Any) -> None:
    """`message_delta` carries the call's final figures as an extra `gearshift` object, which the
    SDK's raw events keep and its stream helper ignores."""
    events = list(client.messages.create(model="auto", max_tokens=200, messages=HELLO, stream=True))
    [delta] = [e for e in events if e.type == "message_delta"]
    figures = delta.model_extra["gearshift"]  # type: ignore[index]
    attempt = next(r for r in records(figures["decision_id"]) if r["kind"] == "attempt")
    assert figures["model"] == "small" and figures["tier"] == 1 and figures["escalated"] is False
    assert figures["cost_usd"] == pytest.approx(attempt["cost_usd"]) and figures["cost_usd"] > 0
    with client.messages.stream(model="auto", max_tokens=200, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_cache_marks_reach_anthropic_and_usage_counts_as_anthropic_does(
    client: anthropic.Anthropic, anthropic_server: LocalAnthropicServer, stream: bool
) -> None:
    """The proxy dropped `cache_control`, so a client's cached prefix was billed in full on every
    call; and its `input_tokens` counted the cached tokens too, where Anthropic's leaves them out."""
    handbook = f"Handbook ({stream}). " + "Refunds need a receipt. " * 300
    mark: Any = {"type": "ephemeral", "ttl": "1h"}
    system: Any = [{"type": "text", "text": handbook, "cache_control": mark}]
    question: Any = [{"role": "user", "content": [{"type": "text", "text": "Shoes?", "cache_control": mark}]}]

    def usage() -> Any:
        call: Any = {"model": "claude-large", "max_tokens": 50, "system": system, "messages": question}
        if not stream:
            return client.messages.create(**call).usage
        with client.messages.stream(**call) as streamed:
            return streamed.get_final_message().usage

    written, read = usage(), usage()
    sent = anthropic_server.requests[-1].body
    assert sent["system"][-1]["cache_control"] == mark == sent["messages"][-1]["content"][-1]["cache_control"]
    assert written.cache_creation_input_tokens > 1000 and written.cache_read_input_tokens == 0
    if not stream:  # streamed, the breakdown is in `message_start`, sent before the upstream answers
        assert written.cache_creation.ephemeral_1h_input_tokens == written.cache_creation_input_tokens
    assert read.cache_read_input_tokens == written.cache_creation_input_tokens
    assert read.cache_creation_input_tokens == 0
    # Anthropic's input_tokens are the uncached remainder: the same small count both times.
    assert 0 < written.input_tokens == read.input_tokens < 50


def test_tools_plain_and_streamed(client: anthropic.Anthropic, openai_server: LocalOpenAIServer) -> None:
    openai_server.script("small", Reply(text="Checking.", tool_calls=[("get_weather", {"city": "Paris"})]))
    message = client.messages.create(model="tier-1", max_tokens=200, messages=HELLO, tools=[WEATHER])
    assert message.stop_reason == "tool_use"
    use = next(b for b in message.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}  # type: ignore[union-attr]
    openai_server.script("small", Reply(text="Checking.", tool_calls=[("get_weather", {"city": "Rome"})]))
    with client.messages.stream(
        model="tier-1", max_tokens=200, messages=HELLO, tools=[WEATHER], tool_choice={"type": "any"}
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Rome"}  # type: ignore[union-attr]
    assert openai_server.requests[-1].body["tool_choice"] == "required"


def test_tool_results_and_images_reach_the_model(
    client: anthropic.Anthropic, openai_server: LocalOpenAIServer, records: Any
) -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": True}
    history: list[Any] = [
        *HELLO,
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result, image, {"type": "text", "text": "And this picture?"}]},
    ]
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=100, messages=history, tools=[WEATHER]
    )
    sent = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert any(p["type"] == "image_url" for p in sent[-1]["content"])
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    assert decision["step_index"] == 1


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="auto", messages=HELLO)
    longer = client.messages.count_tokens(model="auto", messages=HELLO, tools=[WEATHER], system="Be brief.")
    assert 0 < short.input_tokens < longer.input_tokens
    with pytest.raises(anthropic.NotFoundError, match="claude-9"):  # was counted as if it could be sent
        client.messages.count_tokens(model="claude-9", messages=HELLO)


def test_errors_in_anthropics_shape(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="auto", max_tokens=100, messages=[{"role": "system", "content": "x"}])  # type: ignore[list-item]
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error" and error["message"].startswith("'messages[0].role'")
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.post("/v1/messages", body={"model": "auto", "messages": HELLO}, cast_to=object)
    with pytest.raises(anthropic.NotFoundError, match="claude-9"):
        client.messages.create(model="claude-9", max_tokens=100, messages=HELLO)


def test_a_user_turn_with_no_content_is_a_400_naming_it(client: anthropic.Anthropic) -> None:
    """An empty block list was dropped unseen: the model answered the turn before it, where
    Anthropic's API answers a 400 (only a final assistant message may be empty)."""
    history: Any = [*HELLO, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": []}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="auto", max_tokens=100, messages=history)
    assert caught.value.body["error"]["message"].startswith("'messages[2].content'")  # type: ignore[index]
    prefill: Any = [*HELLO, {"role": "assistant", "content": []}]
    assert client.messages.create(model="auto", max_tokens=100, messages=prefill).content


def test_a_strict_tool_stays_strict(
    client: anthropic.Anthropic, openai_server: LocalOpenAIServer, anthropic_server: LocalAnthropicServer
) -> None:
    """A tool's `strict: true` (Anthropic's structured tool inputs) was dropped unseen: the model was
    free to call it with arguments off its schema."""
    for model, server in (("small", openai_server), ("claude-large", anthropic_server)):
        client.messages.create(
            model=model, max_tokens=100, messages=HELLO, tools=[{**WEATHER, "strict": True}]
        )
        (tool,) = server.requests[-1].body["tools"]
        assert tool.get("function", tool)["strict"] is True


class City(BaseModel):
    name: str
    country: str


def test_structured_output_from_the_sdks_parse(
    client: anthropic.Anthropic, openai_server: LocalOpenAIServer
) -> None:
    """`messages.parse(output_format=...)` sends `output_config.format`; the proxy refused it as an
    unrecognized argument, so Anthropic's structured outputs could not go through it at all."""
    message = client.messages.parse(model="small", max_tokens=200, messages=HELLO, output_format=City)
    assert isinstance(message.parsed_output, City)
    sent = openai_server.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["required"] == ["name", "country"]
    with pytest.raises(anthropic.BadRequestError, match=r"output_config\.format\.type"):
        client.messages.create(
            model="small",
            max_tokens=200,
            messages=HELLO,
            output_config={"format": {"type": "xml"}},  # type: ignore[typeddict-item]
        )


def test_top_level_cache_control_is_accepted(client: anthropic.Anthropic) -> None:
    """The SDK's top-level `cache_control` (cache the last cacheable block) is a caching hint, as the
    block-level one the proxy already took: it was refused as an unrecognized argument."""
    message = client.messages.create(
        model="small", max_tokens=100, messages=HELLO, cache_control={"type": "ephemeral"}
    )
    assert message.content


def test_top_level_cache_control_reaches_anthropic_and_its_write_is_priced(
    client: anthropic.Anthropic, anthropic_server: LocalAnthropicServer, records: Any
) -> None:
    """A top-level `cache_control` (automatic caching: the prefix up to the last cacheable block)
    was taken and dropped: Anthropic cached nothing, so the prompt was billed in full on every call,
    and the reservation did not price the write a mark makes."""
    handbook = "Handbook (automatic). " + "Refunds need a receipt. " * 300
    call: Any = {
        "model": "claude-large",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": handbook + "Shoes?"}],
        "cache_control": {"type": "ephemeral"},
    }
    raw = client.messages.with_raw_response.create(**call)
    written = raw.parse().usage
    sent = anthropic_server.requests[-1].body
    assert sent["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert written.cache_creation_input_tokens > 1000
    read = client.messages.create(**call).usage
    assert read.cache_read_input_tokens == written.cache_creation_input_tokens
    # Priced as Anthropic bills it: the write at 1.25x claude-large's $15 input, the rest as listed.
    attempt = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "attempt")
    billed = written.input_tokens * 15 + written.cache_creation_input_tokens * 18.75
    assert attempt["cost_usd"] == pytest.approx((billed + written.output_tokens * 75) / 1e6)


def test_a_tool_results_image_reaches_the_model(
    client: anthropic.Anthropic, openai_server: LocalOpenAIServer
) -> None:
    """A screenshot tool's image inside a tool_result was dropped unseen: only its text went on."""
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}}
    shot = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "map:"}, shot],
    }
    history: Any = [*HELLO, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    client.messages.create(model="small", max_tokens=100, messages=history, tools=[WEATHER])
    sent = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2]["content"] == "map:"
    assert [p["type"] for p in sent[3]["content"]] == ["image_url"]
    with pytest.raises(anthropic.BadRequestError, match=r"content\[0\]\.content\[0\]\.type"):
        odd = {**result, "content": [{"type": "video"}]}
        client.messages.create(
            model="small", max_tokens=100, messages=[*history[:2], {"role": "user", "content": [odd]}]
        )


def test_a_stop_sequence_that_ended_the_answer_is_named(client: anthropic.Anthropic) -> None:
    """The proxy said end_turn with no stop_sequence even when Claude reported which one matched, so
    a loop waiting for its stop sequence (ReAct's "Observation:") never saw it."""
    ask: Any = {"model": "claude-large", "max_tokens": 200, "stop_sequences": ["friend"]}
    messages: Any = [{"role": "user", "content": "hello there friend, how are you?"}]
    plain = client.messages.create(messages=messages, **ask)
    assert (plain.stop_reason, plain.stop_sequence) == ("stop_sequence", "friend")
    with client.messages.stream(messages=messages, **ask) as stream:
        streamed = stream.get_final_message()
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", "friend")
    unmatched = client.messages.create(model="claude-large", max_tokens=200, messages=messages)
    assert (unmatched.stop_reason, unmatched.stop_sequence) == ("end_turn", None)


def test_top_p_and_top_k_reach_the_model_that_takes_them(
    client: anthropic.Anthropic,
    openai_server: LocalOpenAIServer,
    anthropic_server: LocalAnthropicServer,
    records: Any,
) -> None:
    """top_p and top_k were accepted and dropped. An OpenAI model is sent top_p and not top_k (its API
    has none), and the decision's reasons say so; a top_k below 1 is a 400 naming it."""
    sampling: Any = {"top_p": 0.6, "top_k": 12}
    client.messages.create(model="claude-large", max_tokens=100, messages=HELLO, extra_body=sampling)
    sent = anthropic_server.requests[-1].body
    assert (sent["top_p"], sent["top_k"]) == (0.6, 12)
    with client.messages.stream(
        model="claude-large", max_tokens=100, messages=HELLO, extra_body=sampling
    ) as s:
        s.get_final_message()
    assert (anthropic_server.requests[-1].body["top_p"], anthropic_server.requests[-1].body["top_k"]) == (
        0.6,
        12,
    )
    raw = client.messages.with_raw_response.create(
        model="small", max_tokens=100, messages=HELLO, extra_body=sampling
    )
    to_openai = openai_server.requests[-1].body
    assert to_openai["top_p"] == 0.6 and "top_k" not in to_openai
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    assert decision["reasons"][-1] == "top_k not sent: the API of small (provider local) does not take it"
    with pytest.raises(anthropic.BadRequestError, match="'top_k': top_k must be at least 1, got 0"):
        client.messages.create(model="auto", max_tokens=100, messages=HELLO, extra_body={"top_k": 0})


def test_text_beside_tool_results_is_no_new_user_turn(client: anthropic.Anthropic, records: Any) -> None:
    """An agent puts reminders beside its tool results in one user message: the error streak goes on."""
    history: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reminder = {"type": "text", "text": "<reminder>Stay on task.</reminder>"}
    for call_id in ("toolu_1", "toolu_2"):
        use = {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {}}
        result = {"type": "tool_result", "tool_use_id": call_id, "content": "timeout", "is_error": True}
        history += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [result, reminder]}]
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=100, messages=history, tools=[WEATHER]
    )
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    assert any("2 consecutive tool errors" in reason for reason in decision["reasons"])


def test_claudes_own_stop_reasons_reach_the_client(
    client: anthropic.Anthropic, anthropic_server: LocalAnthropicServer
) -> None:
    """Claude's model_context_window_exceeded came out of the proxy as max_tokens, and pause_turn as
    end_turn: a client that raises max_tokens on max_tokens retried a request whose context was full,
    instead of trimming it."""
    for reason in ("model_context_window_exceeded", "refusal", "pause_turn"):
        answer = {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-large",
            "content": [{"type": "text", "text": "Partial"}], "stop_reason": reason, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        }  # fmt: skip
        anthropic_server.script("claude-large", Fail(200, body=answer))
        message = client.messages.create(model="claude-large", max_tokens=100, messages=HELLO)
        assert (message.stop_reason, message.content[0].text) == (reason, "Partial")  # type: ignore[union-attr]
