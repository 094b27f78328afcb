"""OpenTelemetry spans (SDK, in-memory exporter) and Python log lines of routed calls, against a real
SDK and a local server: GenAI attributes, one child per attempt, errors, no prompt and no key unless
allowed; and the `budget_refusal` record of a refused call."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gearshift import (
    AllModelsFailed,
    BudgetExceeded,
    ChatRequest,
    Deployment,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    ShadowConfig,
    SignalScorer,
    StepContext,
    read_records,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.learning import DefaultPolicy
from gearshift.policies import ClassifierConfig, ClassifierPolicy
from gearshift.providers import OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.routing._deployments import DeploymentHealth
from gearshift.serve import ServeSettings, create_app
from gearshift.testing import Delay, Fail, LocalOpenAIServer, Reply

KEY = "sk-tracing-test-3f9a1c"
PROMPT = "Tell me about the secret lighthouse of Ouessant"
REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="openai", model="small", tier=1, prices=ModelPrices(input=0.1, output=0.4)
        ),
        ModelSpec(
            id="large", provider="openai", model="large", tier=2, prices=ModelPrices(input=2.0, output=8.0)
        ),
    ]
)
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _tracer_provider() -> Iterator[None]:
    # The global provider can be set once per process: after this module it is shut down, so the
    # spans of later tests are dropped instead of piling up in the exporter.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    yield
    provider.shutdown()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        yield server


def _router(server: LocalOpenAIServer, tmp_path: Path, *, prompts: bool = False, **options: object) -> Router:
    provider = OpenAIProvider(api_key=KEY, base_url=server.base_url, timeout=5.0)
    log = open_decision_log(tmp_path / "log.jsonl", include_prompts=prompts)
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], decision_log=log, **options)  # type: ignore[arg-type]


def _by_name(finished: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    calls = [s for s in finished if s.parent is None]
    assert len(calls) == 1
    children = sorted((s for s in finished if s.parent is not None), key=lambda s: s.start_time or 0)
    assert all(c.parent is not None and c.parent.span_id == calls[0].context.span_id for c in children)
    return calls[0], children


def _all_values(finished: tuple[ReadableSpan, ...]) -> str:
    return " ".join(str(v) for s in finished for v in (s.attributes or {}).values()) + " ".join(
        str(s.status.description) for s in finished
    )


async def test_a_call_with_a_fallback_is_one_span_with_a_child_per_attempt(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    router = _router(server, tmp_path)
    server.script("small", Fail(status=500))
    result = await router.acomplete(PROMPT, StepContext(agent_id="writer"))
    await router.aclose()
    call, attempts = _by_name(spans.get_finished_spans())
    attrs = dict(call.attributes or {})
    assert call.name == "chat small"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "small"
    assert attrs["gen_ai.response.model"] == result.response.provider_model == "large"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    assert attrs["gearshift.cost.actual_usd"] == pytest.approx(result.cost_usd)
    assert attrs["gearshift.cost.estimated_usd"] == pytest.approx(result.decision.estimated_cost_usd)
    assert attrs["gearshift.tier"] == 1 and attrs["gearshift.policy"] == result.decision.policy
    assert list(attrs["gearshift.reasons"]) == list(result.decision.reasons)  # type: ignore[arg-type]
    assert attrs["gearshift.request_id"] == result.request_id and attrs["gearshift.agent_id"] == "writer"
    assert call.status.status_code != StatusCode.ERROR
    assert [a.name for a in attempts] == ["chat small", "chat large"]
    failed, answered = (dict(a.attributes or {}) for a in attempts)
    assert failed["error.type"] == "server" and attempts[0].status.status_code == StatusCode.ERROR
    assert answered["gen_ai.response.model"] == "large"
    assert answered["gen_ai.usage.output_tokens"] == result.attempts[1].usage.output_tokens
    assert call.start_time is not None and call.end_time is not None
    assert all(call.start_time <= (a.start_time or 0) <= (a.end_time or 0) <= call.end_time for a in attempts)
    finished = spans.get_finished_spans()
    assert PROMPT not in _all_values(finished) and KEY not in _all_values(finished)


async def test_a_probe_says_so_and_a_failed_one_is_no_fallback(
    server: LocalOpenAIServer, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """A tripped deployment's probe was an attempt span like any, and its failure made the call's
    line say `after 1 fallback` although the request went to one model, once."""
    clock = [0.0]
    small = REGISTRY["small"].model_copy(update={"deployments": (Deployment(provider="b", model="small"),)})
    router = Router(
        ModelRegistry([small]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider(name, api_key=KEY, base_url=server.base_url, timeout=5.0)
            for name in ("openai", "b")
        ],
        deployments=DeploymentHealth(failures=1, open_seconds=5.0),
        clock=lambda: clock[0],
    )
    async with router:
        server.script("small", Fail(status=503))
        await router.acomplete(PROMPT)  # deployment openai fails and is tripped; b answers
        clock[0] += 6.0  # openai is due its probe
        server.script("small", Fail(status=503))
        spans.clear()
        with caplog.at_level(logging.DEBUG, logger="gearshift"):
            result = await router.acomplete(PROMPT)
    seen = [(a.provider, a.ok, a.probe) for a in result.attempts]
    assert seen == [("openai", False, True), ("b", True, False)]
    call, attempts = _by_name(spans.get_finished_spans())
    assert [(a.attributes or {}).get("gearshift.probe") for a in attempts] == [True, False]
    assert (attempts[0].attributes or {})["gearshift.provider"] == "openai"
    assert call.status.status_code != StatusCode.ERROR
    lines = [r for r in caplog.records if r.name == "gearshift"]
    (info,) = [r.getMessage() for r in lines if r.levelno == logging.INFO]
    assert info.startswith(f"routed {result.request_id} to small") and "fallback" not in info
    assert not any(r.getMessage().startswith("fallback") for r in lines)


async def test_prompts_and_answers_go_into_spans_only_when_the_log_allows(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    router = _router(server, tmp_path, prompts=True)
    result = await router.acomplete(PROMPT)
    await router.aclose()
    call, _ = _by_name(spans.get_finished_spans())
    attrs = dict(call.attributes or {})
    assert json.loads(str(attrs["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(str(attrs["gen_ai.output.messages"]))[0]["parts"][0]["content"] == result.response.text


async def test_the_callers_request_settings_are_span_attributes(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    router = _router(server, tmp_path)
    request = ChatRequest((Message.user(PROMPT),), max_tokens=64, temperature=0.2, seed=7)
    await router.acomplete(request)
    await router.aclose()
    call, _ = _by_name(spans.get_finished_spans())
    attrs = dict(call.attributes or {})
    assert attrs["gen_ai.request.max_tokens"] == 64 and attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.seed"] == 7 and "gen_ai.request.top_p" not in attrs


async def test_streams_end_their_span_when_done_or_closed(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    router = _router(server, tmp_path)
    stream = router.astream(PROMPT)
    async for _ in stream:
        pass
    assert stream.result is not None
    call, attempts = _by_name(spans.get_finished_spans())
    assert call.status.status_code != StatusCode.ERROR and len(attempts) == 1
    assert dict(attempts[0].attributes or {})["gearshift.streamed"] is True
    first_token_ms = dict(attempts[0].attributes or {})["gearshift.time_to_first_token_ms"]
    assert 0 < float(first_token_ms) <= stream.result.attempts[0].latency_ms  # type: ignore[arg-type]
    spans.clear()
    stream = router.astream(PROMPT)
    await stream.__anext__()
    await stream.aclose()
    call, _ = _by_name(spans.get_finished_spans())
    assert (
        call.status.status_code == StatusCode.ERROR
        and dict(call.attributes or {})["error.type"] == "cancelled"
    )
    await router.aclose()


async def test_a_failed_call_is_an_error_span_and_one_info_line(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    router = _router(server, tmp_path)
    server.script("small", Fail(status=500))
    server.script("large", Fail(status=503))
    with caplog.at_level(logging.DEBUG, logger="gearshift"), pytest.raises(AllModelsFailed):
        await router.acomplete(PROMPT)
    await router.aclose()
    call, attempts = _by_name(spans.get_finished_spans())
    assert call.status.status_code == StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "AllModelsFailed" and len(attempts) == 2
    infos = [r for r in caplog.records if r.levelno == logging.INFO and r.name == "gearshift"]
    assert len(infos) == 1 and "failed (AllModelsFailed" in infos[0].getMessage()
    assert "2 attempts" in infos[0].getMessage()


async def test_one_info_line_per_call_and_debug_lines_per_attempt_and_fallback(
    server: LocalOpenAIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    router = _router(server, tmp_path)
    with caplog.at_level(logging.DEBUG, logger="gearshift"):
        first = await router.acomplete(PROMPT)
        server.script("small", Fail(status=500))
        second = await router.acomplete(PROMPT)
    await router.aclose()
    lines = [r for r in caplog.records if r.name == "gearshift"]
    infos = [r.getMessage() for r in lines if r.levelno == logging.INFO]
    assert len(infos) == 2
    assert infos[0].startswith(f"routed {first.request_id} to small (tier 1)")
    assert f"${first.cost_usd:.6f}" in infos[0] and first.decision.reasons[0] in infos[0]
    assert infos[1].startswith(f"routed {second.request_id} to large") and "after 1 fallback" in infos[1]
    debugs = [r.getMessage() for r in lines if r.levelno == logging.DEBUG]
    assert sum("attempt" in d for d in debugs) == 3
    assert any(d.startswith("fallback from small to large after server") for d in debugs)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert PROMPT not in text and KEY not in text


async def test_a_refused_call_is_a_budget_refusal_record(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="tiny", key="agent:*", usd=0.0000001)])
    router = _router(server, tmp_path, budgets=ledger)
    with pytest.raises(BudgetExceeded):
        await router.acomplete(PROMPT, StepContext(agent_id="a1"))
    await router.aclose()
    records = list(read_records(tmp_path / "log.jsonl"))
    refusals = [r for r in records if r["kind"] == "budget_refusal"]
    assert len(refusals) == 1 and refusals[0]["keys"] == ["agent:a1"]
    assert refusals[0]["request_id"] == records[0]["request_id"]
    call, attempts = _by_name(spans.get_finished_spans())
    assert dict(call.attributes or {})["error.type"] == "BudgetExceeded" and attempts == []
    assert list(dict(call.attributes or {})["gearshift.budget.keys"]) == ["agent:a1"]  # type: ignore[arg-type]


async def test_a_shadow_call_starts_a_trace_of_its_own(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    # The shadow runs after the call ended: nested under the caller's span it would sit in the
    # caller's trace as a call the caller never made, starting after its parent ended.
    router = _router(server, tmp_path, shadow=ShadowConfig(share=1.0, judge="heuristic", seed=1))
    with trace.get_tracer("app").start_as_current_span("app") as app:
        result = await router.acomplete(PROMPT)
    assert router.shadow is not None
    await router.shadow.drain()
    await router.aclose()
    finished = spans.get_finished_spans()
    calls = [s for s in finished if s.name.startswith("chat") and s.kind != trace.SpanKind.CLIENT]
    (routed,) = [s for s in calls if (s.attributes or {}).get("gearshift.request_id") == result.request_id]
    (shadow,) = [s for s in calls if (s.attributes or {}).get("gearshift.agent_id") == "shadow"]
    assert routed.parent is not None and routed.parent.span_id == app.get_span_context().span_id
    assert shadow.parent is None and shadow.context.trace_id != app.get_span_context().trace_id
    assert dict(shadow.attributes or {})["gearshift.run_id"] == f"shadow:{result.request_id}"


async def test_the_proxy_joins_the_trace_of_an_incoming_traceparent(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with LocalOpenAIServer(models=("small",)) as local:
        config = tmp_path / "gearshift.toml"
        config.write_text(
            f'[providers.local]\nkind = "openai"\nbase_url = "{local.base_url}"\nrequire_key = false\n\n'
            '[[models]]\nid = "small"\nprovider = "local"\nmodel = "small"\ntier = 1\n'
            "prices = { input = 1.0, output = 4.0 }\n"
        )
        app = create_app(ServeSettings(config=config))
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
        ):
            for stream in (False, True):
                response = await client.post(
                    "/v1/chat/completions",
                    json={"model": "auto", "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
                )
                assert response.status_code == 200, response.text
    calls = [s for s in spans.get_finished_spans() if s.kind != trace.SpanKind.CLIENT]
    assert len(calls) == 2
    for call in calls:
        assert call.context.trace_id == int(trace_id, 16)
        assert call.parent is not None and call.parent.span_id == int(parent_id, 16)


async def test_overlapping_attempts_keep_their_own_times(spans: InMemorySpanExporter) -> None:
    # A speculative call and its classification run at once: laid back to back from their latencies,
    # the first was pushed before the call began and clipped to a few milliseconds.
    registry = ModelRegistry(
        [
            ModelSpec(id=i, provider="openai", model=i, tier=t, prices=ModelPrices(input=p, output=p))
            for i, t, p in (("mini", 0, 0.1), ("judge", 0, 0.3), ("large", 1, 5.0))
        ]
    )
    with LocalOpenAIServer(models=("mini", "judge", "large")) as local:
        local.script("mini", Delay(0.4))
        local.script("judge", Delay(0.3, Reply("0")))
        config = ClassifierConfig(model="judge", speculative=True, timeout=30.0)
        policy = ClassifierPolicy(config, fallback=DefaultPolicy(), tiers=registry.tiers)
        provider = OpenAIProvider(base_url=local.base_url, require_key=False, timeout=10.0)
        router = Router(registry, policy=policy, providers=[provider])
        result = await router.acomplete(PROMPT)
        await router.aclose()
    finished = spans.get_finished_spans()
    (call,) = [s for s in finished if s.parent is None]
    children = [s for s in finished if s.parent is not None and s.parent.span_id == call.context.span_id]
    attempts = {
        dict(s.attributes or {}).get("gearshift.model_id"): s for s in children if s.kind == SpanKind.CLIENT
    }
    assert set(attempts) == {"mini", "judge"} == {a.model_id for a in result.attempts}
    for attempt in result.attempts:
        span = attempts[attempt.model_id]
        assert span.start_time is not None and span.end_time is not None
        assert (span.end_time - span.start_time) / 1e6 == pytest.approx(attempt.latency_ms, abs=1.0)
    mini, judge = attempts["mini"], attempts["judge"]
    assert (mini.start_time or 0) < (judge.end_time or 0) and (judge.start_time or 0) < (mini.end_time or 0)


async def test_the_provider_name_is_the_api_a_provider_speaks_not_its_configured_name(
    spans: InMemorySpanExporter,
) -> None:
    # gen_ai.provider.name has well-known values (openai, anthropic): a provider configured as
    # [providers.local] is still OpenAI's API, and is named "local" in gearshift.provider.
    prices = ModelPrices(input=0.1, output=0.4)
    registry = ModelRegistry([ModelSpec(id="small", provider="local", model="small", tier=1, prices=prices)])
    with LocalOpenAIServer(models=("small",)) as local:
        provider = OpenAIProvider("local", base_url=local.base_url, require_key=False, timeout=5.0)
        router = Router(registry, policy=SignalScorer(), providers=[provider])
        await router.acomplete(PROMPT)
        await router.aclose()
    call, (attempt,) = _by_name(spans.get_finished_spans())
    for span in (call, attempt):
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.provider.name"] == "openai" and attrs["gearshift.provider"] == "local"


async def test_a_failed_hand_over_keeps_the_models_reason_out_of_log_lines_and_spans(
    server: LocalOpenAIServer, tmp_path: Path, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    # The kept answer's reason quotes why the model asked to escalate, in its own words.
    router = _router(server, tmp_path, self_escalation=True)
    server.script(
        "small", Reply(text="Ouessant has lighthouses.", tool_calls=[("escalate", {"reason": PROMPT})])
    )
    server.script("large", Fail(status=500))
    with caplog.at_level(logging.INFO, logger="gearshift"):
        result = await router.acomplete(PROMPT)
    await router.aclose()
    assert result.model_id == "small" and PROMPT in result.decision.reasons[-1]
    (info,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name == "gearshift"]
    assert "1 escalation (self failed)" in info and PROMPT not in info
    assert PROMPT not in _all_values(spans.get_finished_spans())
