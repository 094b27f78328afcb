"""`gearshift report` over a log written by a real router (real SDK, local server): its figures match
what the router returned to the callers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gearshift import (
    BudgetExceeded,
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    ProviderError,
    Router,
    SignalScorer,
    StepContext,
    TextDelta,
    ToolCall,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.cli import main
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import Drip, Fail, LocalAnthropicServer, LocalOpenAIServer, Reply

KEY = "sk-report-test-4d1e9b"
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


def _logging_router(server: LocalOpenAIServer, log_path: Path, **options: Any) -> Router:
    """A scorer-routed router on `server` that logs its decisions to `log_path`."""
    provider = OpenAIProvider(api_key=KEY, base_url=server.base_url, timeout=5.0)
    return Router(
        REGISTRY,
        policy=SignalScorer(),
        providers=[provider],
        decision_log=open_decision_log(log_path),
        **options,
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".db"])
async def test_report_figures_match_the_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    log_path = tmp_path / f"log{suffix}"
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        provider = OpenAIProvider(api_key=KEY, base_url=server.base_url, timeout=5.0)
        router = Router(
            REGISTRY, policy=SignalScorer(), providers=[provider], decision_log=open_decision_log(log_path)
        )
        results = [
            await router.acomplete("hello", StepContext(agent_id="a1")),
            await router.acomplete("what is 2+2?", StepContext(agent_id="a2")),
        ]
        server.script("small", Fail(status=500))  # the third call falls back to large
        results.append(await router.acomplete("hi there", StepContext(agent_id="a1")))
        await router.aclose()
    capsys.readouterr()
    assert main(["report", "--log", str(log_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # --json prints nothing but the JSON

    assert report["requests"] == 3 and report["answered"] == 3
    assert report["cost"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in results))
    answered = [r.model_id for r in results]
    assert answered == ["small", "small", "large"]
    assert report["models"]["small"]["requests"] == 2
    assert report["models"]["large"]["requests"] == 1
    assert report["tiers"]["1"]["share"] == pytest.approx(2 / 3)
    # The counterfactual prices each answer's tokens at the top tier's model.
    strongest = sum(REGISTRY["large"].cost(r.attempts[-1].usage) for r in results)
    assert report["cost"]["always_strongest_usd"] == pytest.approx(strongest)
    assert report["cost"]["savings_usd"] == pytest.approx(strongest - sum(r.cost_usd for r in results))
    openai = report["providers"]["openai"]
    assert (openai["attempts"], openai["errors"], openai["fallbacks"]) == (4, 1, 1)
    assert openai["error_kinds"] == {"server": 1}
    assert report["models"]["large"]["latency_p50_ms"] == pytest.approx(
        results[2].attempts[-1].latency_ms, abs=0.01
    )
    assert report["agents"]["a1"]["requests"] == 2 and report["agents"]["a2"]["requests"] == 1

    assert main(["report", "--log", str(log_path), "--agent", "a2", "--json"]) == 0
    only = json.loads(capsys.readouterr().out)
    assert only["requests"] == 1
    assert only["cost"]["cost_usd"] == pytest.approx(results[1].cost_usd)


async def test_the_counterfactual_prices_cache_reads_and_writes_at_the_strongest_models_cache_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The counterfactual priced every input token at the strongest model's full input price: a call
    that read its prompt from the cache (a tenth of that price) counted as if the strongest model
    would have paid it in full, so the savings were over-stated."""
    small = ModelPrices(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)
    large = ModelPrices(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    registry = ModelRegistry(
        ModelSpec(id=model_id, provider="anthropic", model=f"claude-{model_id}", tier=tier, prices=prices)
        for model_id, tier, prices in (("small", 1, small), ("large", 2, large))
    )
    handbook = "Policy handbook. " + "Refunds within 30 days need a receipt. " * 300
    log_path = tmp_path / "log.jsonl"
    with LocalAnthropicServer(models=("claude-small", "claude-large"), api_key=KEY) as server:
        provider = AnthropicProvider(api_key=KEY, base_url=server.base_url, timeout=5.0)
        router = Router(
            registry, policy=SignalScorer(), providers=[provider], decision_log=open_decision_log(log_path)
        )
        results = []
        for question in ("Shoes?", "Hats?", "Socks?"):
            system = Message("system", handbook, cache_control={"type": "ephemeral"})
            request = ChatRequest((system, Message.user(question)), max_tokens=40)
            results.append(await router.acomplete(request))
        await router.aclose()
    assert [r.model_id for r in results] == ["small"] * 3
    assert results[0].usage.cache_write_tokens > 1000 and results[1].usage.cache_read_tokens > 1000
    capsys.readouterr()
    assert main(["report", "--log", str(log_path), "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)["cost"]
    strongest = sum(registry["large"].cost(r.attempts[-1].usage) for r in results)
    assert cost["always_strongest_usd"] == pytest.approx(strongest)
    assert cost["savings_usd"] == pytest.approx(strongest - sum(r.cost_usd for r in results))


async def test_the_escalation_rate_is_over_answered_requests_not_budget_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A call a hard budget refused is logged with its decision but was never answered, so it cannot
    have escalated: the rate counted it in its denominator, and two refusals made one escalation in
    two answered calls read as 25% instead of 50%."""
    log_path = tmp_path / "log.jsonl"
    stuck = (
        Message.user("The nightly export is missing rows; look into it."),
        *(
            message
            for index in range(2)
            for message in (
                Message.assistant("", [ToolCall(f"c{index}", "ls", '{"p": "/data"}')]),
                Message.tool(f"c{index}", "Permission denied: /data/export", is_error=True),
            )
        ),
    )
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:broke", usd=1e-9, mode="hard")])
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        router = _logging_router(server, log_path, budgets=ledger)
        calm = await router.acomplete("hello", StepContext(agent_id="a"))
        escalated = await router.acomplete(ChatRequest(stuck), StepContext(agent_id="a"))
        for _ in range(2):
            with pytest.raises(BudgetExceeded):
                await router.acomplete("hello", StepContext(agent_id="broke"))
        await router.aclose()
    assert (calm.model_id, escalated.model_id) == ("small", "large")  # a tool error streak moved it up
    capsys.readouterr()
    assert main(["report", "--log", str(log_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["requests"], report["answered"], report["budget"]["refusals"]) == (4, 2, 2)
    assert report["escalation"]["rate"] == 0.5
    assert report["escalation"]["by_cause"]["step_signals"] == {"requests": 1, "rate": 0.5}
    assert report["agents"]["broke"]["escalation_rate"] == 0.0
    assert report["days"][0]["escalation_rate"] == report["weeks"][0]["escalation_rate"] == 0.5
    assert main(["report", "--log", str(log_path)]) == 0
    assert "escalations:  50.0% of answered requests" in capsys.readouterr().out


async def test_a_hand_over_that_found_no_answer_is_not_counted_as_an_escalation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The escalation record was written as the hand-over started, so a stronger model that failed
    read as an escalation: two calls that each asked to escalate, one kept on the small model because
    large failed, made the rate 100% although only one was answered by a stronger model."""
    log_path = tmp_path / "log.jsonl"
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        router = _logging_router(server, log_path, self_escalation=True)
        unsure = Reply(text="Paris, I think", tool_calls=[("escalate", {"reason": "unsure"})])
        server.script("small", unsure, unsure)
        server.script("large", Reply(text="Paris."), Fail(status=500))
        handed = await router.acomplete("Capital of France?", StepContext(agent_id="a"))
        kept = await router.acomplete("Capital of France?", StepContext(agent_id="a"))
        await router.aclose()
    assert (handed.model_id, kept.model_id) == ("large", "small")
    capsys.readouterr()
    assert main(["report", "--log", str(log_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["escalation"]["rate"] == 0.5
    assert report["escalation"]["by_cause"]["self"] == {"requests": 1, "rate": 0.5}
    assert report["escalation"]["failed_handovers"] == 1
    assert report["agents"]["a"]["escalation_rate"] == 0.5
    assert main(["report", "--log", str(log_path)]) == 0
    printed = capsys.readouterr().out
    assert "escalations:  50.0% of answered requests (gate 0.0%, self 50.0%, " in printed
    assert "; 1 hand-over found no stronger answer\n" in printed


@pytest.mark.parametrize("ending", ["bad_request", "stopped_reading"])
async def test_a_request_whose_hand_over_error_reached_the_caller_is_not_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ending: str
) -> None:
    """A hand-over whose error reached the caller (the stronger model's bad request, a stream the
    caller stopped reading) left the weaker model's successful attempt in the log, so the report
    counted the request as answered by it: 2 of 2 answered, the small model answering half, a tier-1
    cost per request, although the caller got only an error."""
    log_path = tmp_path / "log.jsonl"
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        router = _logging_router(server, log_path, self_escalation=True, max_escalations=1)
        unsure = Reply(text="Paris, I think", tool_calls=[("escalate", {"reason": "unsure"})])
        server.script("small", unsure, unsure)
        server.script(
            "large", Reply(text="Paris."), Fail(status=400) if ending == "bad_request" else Drip(0.002)
        )
        handed = await router.acomplete("Capital of France?", StepContext(agent_id="a"))
        if ending == "bad_request":
            with pytest.raises(ProviderError):
                await router.acomplete("Capital of France?", StepContext(agent_id="a"))
        else:
            stream = router.astream("Capital of France?", StepContext(agent_id="a"))
            async for event in stream:
                if isinstance(event, TextDelta):
                    break  # the caller saw the stronger model's first words and left
            await stream.aclose()
        await router.aclose()
    assert handed.model_id == "large"
    capsys.readouterr()
    assert main(["report", "--log", str(log_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["requests"], report["answered"], report["failed"]) == (2, 1, 1)
    assert report["models"]["small"]["requests"] == 0 and report["models"]["large"]["share"] == 1.0
    assert list(report["tiers"]) == ["2"]
    assert report["tiers"]["2"]["cost_per_request_usd"] == pytest.approx(handed.cost_usd)
    assert report["escalation"]["rate"] == 1.0  # of the one answered request
    assert (report["escalation"]["failed_handovers"], report["escalation"]["handover_errors"]) == (1, 1)
    assert report["cost"]["requests_without_counterfactual"] == 1
    assert report["agents"]["a"]["escalation_rate"] == 1.0
    assert main(["report", "--log", str(log_path)]) == 0
    assert "requests:     2 (1 unanswered, 1 of them by a hand-over's error)\n" in capsys.readouterr().out
