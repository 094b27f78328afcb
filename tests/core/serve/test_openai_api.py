"""The real `openai` SDK against `gearshift serve`: plain, async, streamed, tools, structured output,
model aliases, step headers, and errors in OpenAI's format."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from proxy_support import ProxyProcess, write_config
from pydantic import BaseModel

from gearshift import Deployment, ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer, read_records
from gearshift.providers import OpenAIProvider
from gearshift.routing._deployments import DeploymentHealth
from gearshift.serve import ServeSettings, create_app
from gearshift.serve._metrics import ProxyMetrics
from gearshift.testing import CutStream, Delay, Drip, Fail, LocalAnthropicServer, LocalOpenAIServer, Reply

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def client(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused-on-loopback", max_retries=0)


def test_plain_answer_names_the_model_and_matches_the_decision_log(
    client: openai.OpenAI, records: Any
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, user="alice")
    completion = raw.parse()
    assert completion.model == "small" == raw.headers["x-gearshift-model"]
    assert "Simulated answer from model 'small'" in (completion.choices[0].message.content or "")
    assert raw.headers["x-gearshift-tier"] == "1"
    assert raw.headers["x-gearshift-escalated"] == "false"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    logged = records(raw.headers["x-gearshift-decision-id"])
    decision = next(r for r in logged if r["kind"] == "decision")
    attempt = next(r for r in logged if r["kind"] == "attempt")
    assert decision["model"] == "small" and decision["agent_id"] == "alice"
    assert float(raw.headers["x-gearshift-cost-usd"]) == pytest.approx(attempt["cost_usd"])
    expected = (completion.usage.prompt_tokens * 1.0 + completion.usage.completion_tokens * 4.0) / 1e6
    assert attempt["cost_usd"] == pytest.approx(expected)


async def test_async_client(proxy: ProxyProcess) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as client:
        completion = await client.chat.completions.create(model="large", messages=HELLO)
    assert completion.model == "large"


def test_stream_with_usage_matches_the_plain_answer(client: openai.OpenAI, records: Any) -> None:
    plain = client.chat.completions.create(model="auto", messages=HELLO)
    with client.chat.completions.with_streaming_response.create(
        model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-gearshift-model"] == "small"
        decision_id = response.headers["x-gearshift-decision-id"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    attempts = [r for r in records(decision_id) if r["kind"] == "attempt"]
    assert len(attempts) == 1 and attempts[0]["streamed"] and attempts[0]["ok"]


def test_a_streams_final_figures_ride_in_its_last_chunk(client: openai.OpenAI, records: Any) -> None:
    """Headers leave before a stream ends, so its cost comes in the stream: an extra `gearshift`
    object on the usage chunk (on the finishing chunk without `include_usage`), which the SDK keeps."""
    for options in ({"include_usage": True}, None):
        with client.chat.completions.with_streaming_response.create(
            model="auto", messages=HELLO, stream=True, stream_options=options
        ) as response:
            decision_id = response.headers["x-gearshift-decision-id"]
            assert "x-gearshift-cost-usd" not in response.headers
            chunks = list(response.parse())
        carrying = [c for c in chunks if c.model_extra and "gearshift" in c.model_extra]
        assert carrying == [chunks[-1]]
        assert (chunks[-1].usage is not None) == (options is not None)
        figures = chunks[-1].model_extra["gearshift"]  # type: ignore[index]
        attempt = next(r for r in records(decision_id) if r["kind"] == "attempt")
        assert figures == {
            "model": "small",
            "tier": 1,
            "cost_usd": pytest.approx(attempt["cost_usd"]),
            "decision_id": decision_id,
            "escalated": False,
        }
        assert figures["cost_usd"] > 0


def test_tools_and_parallel_calls(client: openai.OpenAI, openai_server: LocalOpenAIServer) -> None:
    openai_server.script(
        "small", Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})])
    )
    completion = client.chat.completions.create(
        model="tier-1",
        messages=HELLO,
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=True,  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Rome"]  # type: ignore[union-attr]
    sent = openai_server.requests[-1].body
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent["parallel_tool_calls"] is True


def test_streamed_tool_call_is_assembled_by_the_sdk(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="auto",
        messages=HELLO,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = stream.get_final_completion()
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert isinstance(json.loads(call.function.arguments)["city"], str)  # type: ignore[union-attr]


def test_a_tool_result_in_the_history_is_an_observe_step(client: openai.OpenAI, records: Any) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"P"}'},
    }
    messages: list[Any] = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: the weather service timed out"},
    ]  # fmt: skip
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=messages, tools=[WEATHER], extra_headers={"x-gearshift-agent-id": "planner"}
    )
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    assert decision["step_type"] == "observe" and decision["step_index"] == 1
    assert decision["agent_id"] == "planner"


def test_a_history_from_other_providers_reaches_the_model_with_unique_paired_ids(
    client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    # Small local servers number every turn's call `call_0`; Anthropic refuses a repeated id.
    def turn(result: str) -> list[Any]:
        call = {
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"P"}'},
        }
        return [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "content": result},
        ]

    client.chat.completions.create(
        model="small", messages=[*HELLO, *turn("sunny"), *turn("rainy")], tools=[WEATHER]
    )  # type: ignore[list-item]
    sent = openai_server.requests[-1].body["messages"]
    ids = [m["tool_calls"][0]["id"] for m in sent if m.get("tool_calls")]
    assert ids[0] == "call_0" and len(set(ids)) == 2
    assert [(m["tool_call_id"], m["content"]) for m in sent if m["role"] == "tool"] == [
        (ids[0], "sunny"),
        (ids[1], "rainy"),
    ]


class City(BaseModel):
    name: str
    population: int


def test_structured_output(client: openai.OpenAI, openai_server: LocalOpenAIServer) -> None:
    parsed = client.chat.completions.parse(model="auto", messages=HELLO, response_format=City)
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City)
    sent = openai_server.requests[-1].body["response_format"]
    # The SDK's parse asks for a strict schema; the proxy passes that on (it dropped it before).
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    plain = client.chat.completions.create(
        model="auto", messages=HELLO, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(plain.choices[0].message.content or ""), dict)


def test_image_parts_reach_the_model(client: openai.OpenAI, openai_server: LocalOpenAIServer) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}],  # type: ignore[list-item]
    )
    parts = openai_server.requests[-1].body["messages"][-1]["content"]
    assert any(p["type"] == "image_url" for p in parts)


def test_aliases_and_step_headers_steer_the_decision(client: openai.OpenAI) -> None:
    assert client.chat.completions.create(model="large", messages=HELLO).model == "large"
    assert client.chat.completions.create(model="claude-large", messages=HELLO).model == "claude-large"
    hinted = client.chat.completions.create(
        model="auto", messages=HELLO, extra_headers={"x-gearshift-min-tier": "2", "x-gearshift-max-tier": "2"}
    )
    assert hinted.model == "large"
    capped = client.chat.completions.create(
        model="tier-1", messages=HELLO, extra_headers={"x-gearshift-min-tier": "1"}
    )
    assert capped.model == "small"
    listed = [m.id for m in client.models.list()]
    assert listed == ["auto", "tier-1", "tier-2", "tier-3", "small", "large", "claude-large"]


def test_unknown_model_is_a_404_listing_the_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-17", messages=HELLO)
    assert "gpt-17" in caught.value.message and "large" in caught.value.message
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("extra", "headers", "param"),
    [
        ({"messages": [{"role": "robot", "content": "hi"}]}, {}, "messages[0].role"),
        ({"temperature": "hot"}, {}, "temperature"),
        ({"max_tokens": 0}, {}, "max_tokens"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, {}, "tools[0]"),  # was null
        # a custom tool (GPT-5's) was "tools[0] '?' is malformed: name: Field required"
        ({"tools": [{"type": "custom", "custom": {"name": "grep"}}]}, {}, "tools[0].type"),
        ({"frobnicate": 1}, {}, "frobnicate"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {}, "strict": "yes"},
                }
            },
            {},
            "response_format.json_schema.strict",
        ),
        ({}, {"x-gearshift-step-type": "dance"}, None),
        ({}, {"x-gearshift-max-tier": "-1"}, None),
    ],
)
def test_bad_requests_are_400s_naming_the_field(
    client: openai.OpenAI, extra: dict[str, Any], headers: dict[str, str], param: str | None
) -> None:
    body: dict[str, Any] = {"model": "auto", "messages": HELLO, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=httpx.Response, options={"headers": headers})
    error = caught.value
    assert error.status_code == 400 and error.type == "invalid_request_error"
    if param is not None:
        assert error.param == param and param in error.message
    else:
        named = {"x-gearshift-step-type": "step-type", "x-gearshift-max-tier": "max-tier"}
        assert any(n in error.message for n in named.values()) or "bad name!" in error.message


def test_malformed_json_and_oversized_bodies(proxy: ProxyProcess) -> None:
    url = f"{proxy.base_url}/chat/completions"
    broken = httpx.post(
        url, content=b'{"model": "auto", "messages": [', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]["message"]
    big = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x" * 300_000}]})
    assert httpx.post(url, content=big).status_code == 413
    chunked = httpx.post(url, content=iter([big[:150_000].encode(), big[150_000:].encode()]))
    assert chunked.status_code == 413
    assert "200000 bytes" in chunked.json()["error"]["message"]


def test_all_models_failing_is_a_502_listing_the_attempts(
    client: openai.OpenAI, openai_server: LocalOpenAIServer, proxy: ProxyProcess
) -> None:
    openai_server.script("large", Fail(500))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="large", messages=HELLO, extra_headers={"x-gearshift-max-tier": "2"}
        )
    assert caught.value.status_code == 502
    assert openai_server.pending("large") == 0  # a failure left queued would fail a later test's call
    assert "large" in caught.value.message and "HTTP 500" in caught.value.message
    openai_server.script("small", Fail(500))
    fell_back = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert fell_back.headers["x-gearshift-model"] != "small"
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert 'gearshift_proxy_fallbacks_total{model="small"} 1.0' in metrics
    assert 'gearshift_proxy_requests_total{api="openai",model="",status="502",tier=""} 1.0' in metrics


async def test_a_failed_probe_is_no_fallback_in_the_metrics(openai_server: LocalOpenAIServer) -> None:
    """Both deployments of `small` fail their probes, then their real calls, and `large` answers:
    the two failed probes were counted as fallbacks too, four where the request fell back twice."""
    clock = [0.0]
    small = ModelSpec(
        id="small", provider="a", model="small", tier=1, prices=ModelPrices(input=1.0, output=2.0),
        deployments=(Deployment(provider="b", model="small"),),
    )  # fmt: skip
    large = ModelSpec(
        id="large", provider="a", model="large", tier=2, prices=ModelPrices(input=2.0, output=4.0)
    )
    router = Router(
        ModelRegistry([small, large]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider(name, base_url=openai_server.base_url, require_key=False, timeout=5.0)
            for name in ("a", "b")
        ],
        deployments=DeploymentHealth(failures=1, open_seconds=5.0),
        clock=lambda: clock[0],
    )
    async with router:
        openai_server.script("small", Fail(503), Fail(503))
        await router.acomplete("trips both deployments of small")
        clock[0] += 300.0  # past the model's cooldown and both breakers' open periods
        openai_server.script("small", *[Fail(503)] * 4)
        result = await router.acomplete("both probed, both still down")
    seen = [(a.model_id, a.ok, a.probe) for a in result.attempts]
    assert seen == [("small", False, True)] * 2 + [("small", False, False)] * 2 + [("large", True, False)]
    metrics = ProxyMetrics()
    metrics.answered("openai", result, 0.1, streamed=False, tiers={"small": 1, "large": 2})
    text = metrics.render().decode()
    assert 'gearshift_proxy_fallbacks_total{model="small"} 2.0' in text


def test_a_client_that_hangs_up_mid_stream_is_charged(
    proxy: ProxyProcess, openai_server: LocalOpenAIServer, records: Any
) -> None:
    openai_server.script("small", Drip(0.002))
    with httpx.stream(
        "POST", f"{proxy.base_url}/chat/completions",
        json={"model": "small", "messages": HELLO, "stream": True}, timeout=10,
    ) as response:  # fmt: skip
        decision_id = response.headers["x-gearshift-decision-id"]
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    # The proxy notices the hang-up, closes the routed stream, and the router records the attempt.
    attempts = [r for r in records(decision_id) if r["kind"] == "attempt"]
    assert attempts and attempts[0]["cancelled"] and attempts[0]["cost_usd"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_client_that_hangs_up_before_the_first_byte_cancels_the_call(
    proxy: ProxyProcess, openai_server: LocalOpenAIServer, proxy_dir: Path, stream: bool
) -> None:
    openai_server.script("small", Delay(4.0))
    agent = f"hangs-up-early-{stream}"
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{proxy.base_url}/chat/completions",
            json={"model": "small", "messages": HELLO, "stream": stream},
            headers={"x-gearshift-agent-id": agent},
            timeout=0.5,
        )
    # The proxy stops waiting on the model as soon as the client has gone: the attempt is recorded as
    # cancelled (and charged what it cost) well before the model would have answered; it ran to its end.
    attempts: list[dict[str, Any]] = []
    while not attempts and time.monotonic() - started < 10:
        attempts = [
            r
            for r in read_records(proxy_dir / "decisions.db")
            if r["kind"] == "attempt" and r["agent_id"] == agent
        ]
        time.sleep(0.05)
    assert len(attempts) == 1 and attempts[0]["cancelled"] and attempts[0]["cost_usd"] > 0
    assert attempts[0]["latency_ms"] < 3000


def test_a_stream_that_breaks_after_its_first_token_ends_with_an_error_event(
    client: openai.OpenAI, openai_server: LocalOpenAIServer
) -> None:
    openai_server.script("small", CutStream(after_chunks=3))
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="small", messages=HELLO, stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received)  # the caller saw part of the answer before the break
    assert "small: stream" in caught.value.message


def test_sampling_settings_reach_the_model_that_takes_them(
    client: openai.OpenAI,
    openai_server: LocalOpenAIServer,
    anthropic_server: LocalAnthropicServer,
    records: Any,
) -> None:
    """top_p, seed and the penalties were accepted and dropped: no model saw them. An Anthropic model
    is sent top_p and not the settings its API lacks, and the decision's reasons say so."""
    settings: Any = {"top_p": 0.3, "seed": 11, "frequency_penalty": 0.2, "presence_penalty": -0.4}
    client.chat.completions.create(model="small", messages=HELLO, **settings)
    sent = openai_server.requests[-1].body
    assert {k: sent.get(k) for k in settings} == settings
    with client.chat.completions.with_streaming_response.create(
        model="small", messages=HELLO, stream=True, **settings
    ) as response:
        list(response.parse())
    assert {k: openai_server.requests[-1].body.get(k) for k in settings} == settings
    raw = client.chat.completions.with_raw_response.create(model="claude-large", messages=HELLO, **settings)
    to_claude = anthropic_server.requests[-1].body
    assert to_claude["top_p"] == 0.3 and not {"seed", "frequency_penalty", "presence_penalty"} & set(
        to_claude
    )
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    assert "seed, frequency_penalty, presence_penalty not sent" in decision["reasons"][-1]


def test_reasoning_effort_reaches_the_models_that_take_it(
    client: openai.OpenAI, openai_server: LocalOpenAIServer, records: Any
) -> None:
    """`reasoning_effort` (Chat Completions) and `reasoning.effort` (Responses) were taken and dropped:
    a reasoning model never saw them. They now reach a model marked `reasoning`; one
    not marked is sent the request without it, and the decision's reasons say so."""
    client.chat.completions.create(model="large", messages=HELLO, reasoning_effort="low")
    assert openai_server.requests[-1].body["reasoning_effort"] == "low"
    client.responses.create(model="large", input="What is 2 + 2?", reasoning={"effort": "high"})
    assert openai_server.requests[-1].body["reasoning_effort"] == "high"
    raw = client.chat.completions.with_raw_response.create(
        model="small", messages=HELLO, reasoning_effort="minimal"
    )
    assert "reasoning_effort" not in openai_server.requests[-1].body
    decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
    said = "reasoning_effort not sent: small is not a reasoning model"
    assert decision["reasons"][-1] == said
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="large", messages=HELLO, reasoning_effort="hgih")  # type: ignore[arg-type]
    assert caught.value.param == "reasoning_effort" and "'hgih'" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="large", input="hi", reasoning={"effort": 3})  # type: ignore[typeddict-item]
    assert caught.value.param == "reasoning.effort"


def test_a_new_user_turn_ends_the_error_streak_of_the_turn_before(
    client: openai.OpenAI, records: Any
) -> None:
    def failed_call(call_id: str) -> list[Any]:
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"P"}'},
        }
        return [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "Error: the weather service timed out"},
        ]

    first_turn: list[Any] = [
        {"role": "user", "content": "What is the weather in Paris?"},
        *failed_call("call_0"),
        *failed_call("call_1"),
    ]

    def reasons(messages: list[Any]) -> list[str]:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=messages, tools=[WEATHER]
        )
        decision = next(r for r in records(raw.headers["x-gearshift-decision-id"]) if r["kind"] == "decision")
        return list(decision["reasons"])

    assert any("2 consecutive tool errors" in reason for reason in reasons(first_turn))
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": "The weather service is down, sorry."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert not any("consecutive tool errors" in reason for reason in reasons(second_turn))


async def test_an_answer_kept_after_a_failed_hand_over_is_not_marked_escalated(tmp_path: Path) -> None:
    # The small model asks to escalate and the large one fails: the caller gets small's answer, which
    # no stronger model gave, so the proxy's header must not say it was escalated.
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("small", Reply(text="Paris, I think", tool_calls=[("escalate", {"reason": "unsure"})]))
        server.script("large", Fail(500))
        config = write_config(tmp_path, server.base_url, budgets="[routing]\nself_escalation = true\n")
        app = create_app(ServeSettings(config=config))
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
        ):
            response = await client.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO})
            metrics = (await client.get("/metrics")).text
    assert response.status_code == 200, response.text
    assert 'gearshift_proxy_escalations_total{source="self"}' not in metrics  # nor counted as one
    assert response.json()["choices"][0]["message"]["content"] == "Paris, I think"
    assert response.headers["x-gearshift-model"] == "small"
    assert response.headers["x-gearshift-escalated"] == "false"
