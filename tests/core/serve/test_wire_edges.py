"""Edges of the two wires a user reaches with the real SDKs or raw HTTP: bodies JSON lets through
but no model can take, settings the proxy cannot honour, and the routes the SDKs call besides chat."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest
from proxy_support import ProxyProcess

from gearshift.testing import Fail, LocalOpenAIServer

HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def _post(proxy: ProxyProcess, path: str, raw: bytes) -> httpx.Response:
    return httpx.post(
        f"{proxy.url}{path}", content=raw, headers={"content-type": "application/json"}, timeout=30
    )


@pytest.mark.parametrize(
    ("path", "raw", "named"),
    [
        (
            "/v1/chat/completions",
            b'{"model": "auto", "messages": [{"role": "user", "content": "a \\ud800 b"}]}',
            "messages[0].content",
        ),
        (
            "/v1/messages",
            b'{"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "\\udc00"}]}',
            "messages[0].content",
        ),
        ("/v1/chat/completions", b'{"model": "auto", "messages": %s, "temperature": NaN}', "NaN"),
        ("/v1/chat/completions", b'{"model": "auto", "messages": %s, "temperature": 1e400}', "temperature"),
    ],
)
def test_text_and_numbers_json_lets_through_but_no_model_takes_are_400s(
    proxy: ProxyProcess, path: str, raw: bytes, named: str
) -> None:
    """A lone surrogate escape was a 500 in plain text (the router could not encode the prompt), and
    NaN or an infinite temperature went on to the model."""
    raw = raw.replace(b"%s", b'[{"role": "user", "content": "hi"}]')
    answer = _post(proxy, path, raw)
    assert answer.status_code == 400, answer.text
    body: dict[str, Any] = answer.json()
    assert named in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"


def test_an_escaped_emoji_is_text(proxy: ProxyProcess) -> None:
    """A surrogate pair, as Python's json.dumps writes every emoji, is one character, not an error."""
    raw = b'{"model": "auto", "messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}]}'
    answer = _post(proxy, "/v1/chat/completions", raw)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def client(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused-on-loopback", max_retries=0)


@pytest.mark.parametrize(
    ("settings", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"n": 0}, "n"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"top_p": 1.5}, "top_p"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"seed": 1.5}, "seed"),
        ({"temperature": 2.5}, "temperature"),
        ({"logit_bias": {"15339": -100}}, "logit_bias"),
    ],
)
def test_settings_the_proxy_cannot_honour_are_400s_naming_them(
    client: openai.OpenAI, settings: dict[str, Any], param: str
) -> None:
    """`logprobs` came back as null (code reading `choice.logprobs.content` broke), `n: 0` was one
    answer, `max_completion_tokens: 0` was read as no cap at all, and
    `stream_options` without `stream: true` was taken where OpenAI answers a 400, and `logit_bias`
    was dropped unseen: the token it banned could come back (its ids are one tokenizer's)."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="small", messages=HELLO, **settings)  # type: ignore[call-overload]
    assert caught.value.param == param and param in caught.value.message


def test_logprobs_off_and_one_choice_are_fine(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="small", messages=HELLO, logprobs=False, n=1, top_logprobs=0, logit_bias={}
    )
    assert answer.choices[0].message.content


def test_each_sdk_lists_and_retrieves_the_models_in_its_own_shape(proxy: ProxyProcess) -> None:
    """`models.retrieve` was a plain-text 404, and the Anthropic SDK read OpenAI's list: its models had
    no `display_name` or `created_at`, and their `type` was missing."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused-on-loopback", max_retries=0)
    assert [m.id for m in client.models.list()][:2] == ["auto", "tier-1"]
    assert client.models.retrieve("small").id == "small"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-9")
    assert missing.value.code == "model_not_found" and "small" in missing.value.message
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="unused-on-loopback", max_retries=0)
    listed = list(claude.models.list())
    assert [m.id for m in listed][:2] == ["auto", "tier-1"]
    assert (
        listed[0].type == "model" and listed[0].display_name == "auto" and listed[0].created_at.year == 1970
    )
    assert claude.models.retrieve("claude-large").id == "claude-large"
    with pytest.raises(anthropic.NotFoundError) as unknown:
        claude.models.retrieve("claude-9")
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_a_base_url_off_by_v1_is_a_404_that_says_so_in_the_sdks_shape(proxy: ProxyProcess) -> None:
    """A base_url without /v1 (OpenAI) or with it (Anthropic) got a bare plain-text "Not Found"."""
    without_v1 = openai.OpenAI(base_url=proxy.url, api_key="unused-on-loopback", max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        without_v1.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    assert "did you mean /v1/chat/completions?" in caught.value.message
    with_v1 = anthropic.Anthropic(base_url=proxy.base_url, api_key="unused-on-loopback", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as refused:
        with_v1.messages.create(model="auto", max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "not_found_error" and "did you mean /v1/messages?" in error["message"]
    wrong_method = httpx.get(f"{proxy.base_url}/chat/completions")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"]["message"] == "/v1/chat/completions does not take GET"


def test_an_image_in_a_tool_message_is_a_400_not_dropped(client: openai.OpenAI) -> None:
    """OpenAI's tool messages take text parts only; the proxy dropped an image part unseen."""
    call = {"id": "call_1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    history: Any = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "here"}, image]},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="small", messages=history)
    assert caught.value.param == "messages[2].content[1].type"


@pytest.mark.parametrize(
    ("path", "extra", "named"),
    [
        ("/v1/chat/completions", {"metadata": {"agent_id": 7}}, "'metadata.agent_id': must be a string"),
        ("/v1/responses", {"metadata": {"agent_id": ["a"]}}, "'metadata.agent_id': must be a string"),
        ("/v1/messages", {"metadata": {"user_id": 7}}, "'metadata.user_id': must be a string"),
        ("/v1/messages", {"metadata": {"agent": "x"}}, "'metadata.agent': unrecognized"),
    ],
)
def test_metadata_naming_the_caller_must_be_strings(
    proxy: ProxyProcess, path: str, extra: dict[str, Any], named: str
) -> None:
    """A caller id that was not a string was skipped unseen: the call went to the default agent's
    budget instead of the one it named."""
    body: dict[str, Any] = {"model": "small", **extra}
    body |= {"input": "hi"} if path == "/v1/responses" else {"messages": HELLO, "max_tokens": 50}
    answer = httpx.post(f"{proxy.url}{path}", json=body, timeout=30)
    assert answer.status_code == 400 and named in answer.text


def _cut_tool_call(*, stream: bool = False) -> Fail:
    """A completion whose tool call `max_tokens` cut off mid-arguments, as an OpenAI model sends it
    (streamed: its server-sent events, sent as the body)."""
    call = {"index": 0, "id": "call_1", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": '{"city": "Os'}
    usage = {"prompt_tokens": 5, "completion_tokens": 10, "total_tokens": 15}
    head = {"id": "c1", "created": 0, "model": "small"}
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        choice = {"index": 0, "message": message, "finish_reason": "length"}
        return Fail(200, body={**head, "object": "chat.completion", "choices": [choice], "usage": usage})
    chunks = [
        {"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}, "finish_reason": None},
        {"index": 0, "delta": {}, "finish_reason": "length"},
    ]
    events = [{**head, "object": "chat.completion.chunk", "choices": [c]} for c in chunks]
    events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return Fail(200, body="".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n")


def test_a_tool_call_cut_by_max_tokens_says_so_on_each_wire(
    proxy: ProxyProcess, client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    """Chat Completions said `tool_calls`, and the caller ran a tool on half its arguments; the
    Messages route answered a paid call with a 400 blaming the request ("arguments are not valid
    JSON"). OpenAI says `length`, Anthropic `max_tokens`."""
    weather = {"type": "object", "properties": {"city": {"type": "string"}}}
    openai_server.script("small", _cut_tool_call())
    function = {"type": "function", "function": {"name": "get_weather", "parameters": weather}}
    chat = client.chat.completions.create(model="small", messages=HELLO, max_tokens=10, tools=[function])  # type: ignore[list-item]
    assert chat.choices[0].finish_reason == "length"
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="unused-on-loopback", max_retries=0)
    tools: Any = [{"name": "get_weather", "input_schema": weather}]
    for stream in (False, True):
        openai_server.script("small", _cut_tool_call(stream=stream))
        if stream:
            with claude.messages.stream(model="small", max_tokens=10, messages=HELLO, tools=tools) as events:
                message = events.get_final_message()
        else:
            message = claude.messages.create(model="small", max_tokens=10, messages=HELLO, tools=tools)
        assert message.stop_reason == "max_tokens" and message.content[0].type == "tool_use"


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"origin": "https://pages.example"}, "https://pages.example"),
        ({"origin": "null"}, "null"),
        ({"host": "rebound.example"}, "rebound.example"),
    ],
)
def test_a_keyless_loopback_proxy_refuses_web_pages(
    proxy: ProxyProcess, openai_server: LocalOpenAIServer, headers: dict[str, str], named: str
) -> None:
    """Without proxy keys any web page open in the operator's browser could spend the budget: a
    cross-site `fetch(..., {mode: "no-cors", body})` is sent without a preflight, and a DNS-rebound
    name reaches 127.0.0.1 as its own site. Such requests carry a foreign `Origin` or `Host`."""
    sent = len(openai_server.requests)
    body = json.dumps({"model": "small", "messages": HELLO}).encode()
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions", content=body, headers={"content-type": "text/plain", **headers}
    )
    assert answer.status_code == 403, answer.text
    assert named in answer.json()["error"]["message"] and "--keys" in answer.json()["error"]["message"]
    assert len(openai_server.requests) == sent  # nothing was called, so nothing was spent


def test_a_keyless_loopback_proxy_serves_local_pages_and_names(proxy: ProxyProcess) -> None:
    # A page served from this machine is as trusted as any local process; so is `localhost` by name.
    for headers in ({"origin": "http://localhost:3000"}, {"host": f"localhost:{proxy.port}"}, {}):
        answer = httpx.post(
            f"{proxy.url}/v1/chat/completions", json={"model": "small", "messages": HELLO}, headers=headers
        )
        assert answer.status_code == 200, (headers, answer.text)


@pytest.mark.parametrize("path", ["/metrics", "/ready", "/health"])
def test_a_keyless_loopback_proxy_shows_its_operations_to_this_machine_only(
    proxy: ProxyProcess, path: str
) -> None:
    """/metrics, /ready and /health answered any Host: a DNS-rebound page read the models served and
    what each agent spent (and /ready the variables of missing keys). A probe of this machine, naming
    127.0.0.1 or localhost as a health check of an orchestrator does, is still answered."""
    for headers in ({"host": "rebound.example"}, {"origin": "https://pages.example"}):
        refused = httpx.get(f"{proxy.url}{path}", headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert "--keys" in refused.json()["error"]["message"]
        assert "gearshift_proxy" not in refused.text
    for headers in ({}, {"host": f"localhost:{proxy.port}"}, {"host": f"127.0.0.1:{proxy.port}"}):
        answer = httpx.get(f"{proxy.url}{path}", headers=headers)
        assert answer.status_code == 200, (headers, answer.text)


def test_every_model_rate_limited_is_a_429_with_the_providers_retry_after(
    client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    """Kept last in this module: the rate-limited models cool down. It was a 502, which the SDKs
    retry at once, and the providers' retry-after was lost."""
    openai_server.script("large", *[Fail(429, retry_after=2.5)] * 3)
    openai_server.script("small", *[Fail(429, retry_after=7)] * 3)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="large", messages=HELLO, extra_headers={"x-gearshift-max-tier": "2"}
        )  # type: ignore[arg-type]
    assert caught.value.code == "rate_limit_exceeded" and "large" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "3"


def test_a_temperature_out_of_each_wire_s_range_is_a_400_naming_it(proxy: ProxyProcess) -> None:
    """A temperature of 3 went on to the model and came back as a provider failure; the Anthropic
    wire takes 0 to 1, as Anthropic's API does (anthropic 2.x sends it in the body's extras)."""
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="unused-on-loopback", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="auto", max_tokens=20, messages=HELLO, extra_body={"temperature": 1.5})  # type: ignore[arg-type]
    assert "'temperature': must be a number from 0 to 1, got 1.5" in caught.value.message
    claude.messages.create(model="auto", max_tokens=20, messages=HELLO, extra_body={"temperature": 1.0})  # type: ignore[arg-type]


def test_each_sdk_reads_the_decision_id_as_its_request_id(proxy: ProxyProcess) -> None:
    """The providers name every answer in a header (`x-request-id`, Anthropic's `request-id`) that the
    SDKs expose as `_request_id` and put in their errors and logs; through the proxy it was None, so
    a user's logged request id led nowhere. It is the decision id, the key of the decision log."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused-on-loopback", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.parse()._request_id == raw.headers["x-gearshift-decision-id"]
    with client.chat.completions.with_streaming_response.create(
        model="auto", messages=HELLO, stream=True
    ) as streamed:
        assert streamed.request_id == streamed.headers["x-gearshift-decision-id"]
    with client.responses.with_streaming_response.create(model="auto", input="Hi", stream=True) as answer:
        assert answer.request_id == answer.headers["x-gearshift-decision-id"]
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="unused-on-loopback", max_retries=0)
    message = claude.messages.with_raw_response.create(model="auto", max_tokens=50, messages=HELLO)
    assert message.parse()._request_id == message.headers["x-gearshift-decision-id"]
    with claude.messages.with_streaming_response.create(
        model="auto", max_tokens=50, messages=HELLO, stream=True
    ) as events:
        assert events.request_id == events.headers["x-gearshift-decision-id"]
