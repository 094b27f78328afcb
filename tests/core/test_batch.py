"""Batched cascades through the router and `gearshift batch` on a local server: only rejected answers go
to the strong model, rate limits are waited out, and an interrupted batch resumes without paying twice."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gearshift import (
    BatchItem,
    BatchResult,
    ChatRequest,
    InvalidRequestError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    Usage,
    summarize_batch,
)
from gearshift._bridge import run_sync
from gearshift.budgets import BudgetLedger, BudgetLimit, Reservation
from gearshift.budgets._sqlite import SQLiteStore
from gearshift.cascades import HeuristicGate, LLMJudgeGate
from gearshift.cli import main
from gearshift.cli._batch import _write, read_batch, read_journal
from gearshift.datasets import OutcomeTableError
from gearshift.providers import OpenAIProvider
from gearshift.testing import Delay, Fail, LocalOpenAIServer, Reply

REFUSAL = "I'm sorry, but I can't help with that."


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large")) as local:
        yield local


def _registry() -> ModelRegistry:
    return ModelRegistry(
        [
            ModelSpec(
                id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=0.1, output=0.4)
            ),
            ModelSpec(
                id="large", provider="local", model="large", tier=2, prices=ModelPrices(input=2.0, output=8.0)
            ),
        ]
    )


def _router(server: LocalOpenAIServer) -> Router:
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    return Router(_registry(), policy=SignalScorer(), providers=[provider])


def _asked(server: LocalOpenAIServer, model: str) -> list[str]:
    """The last user message of every request `model` received, in order."""
    return [r.body["messages"][-1]["content"] for r in server.requests if r.model == model]


async def test_a_batched_cascade_sends_only_the_rejected_answers_to_the_strong_model(
    server: LocalOpenAIServer,
) -> None:
    server.script("small", Reply("Paris."), Reply(REFUSAL), Reply("4"), Reply(""))
    prompts = [f"question {n}" for n in range(4)]
    async with _router(server) as router:
        results = await router.abatch(prompts, concurrency=1, cascade=True)
    assert _asked(server, "small") == prompts
    assert _asked(server, "large") == ["question 1", "question 3"]
    final = {r.id: r for r in results if r.accepted}
    assert {i: r.stage for i, r in final.items()} == {
        "0": "cheap",
        "1": "strong",
        "2": "cheap",
        "3": "strong",
    }
    rejected = [r for r in results if not r.accepted]
    assert [r.id for r in rejected] == ["1", "3"]
    assert "refused" in rejected[0].reason
    assert all(r.cost_usd > 0 for r in results)
    summary = summarize_batch(results, _registry())
    assert (summary.items, summary.answered, summary.escalated) == (4, 4, 2)
    assert summary.escalation_rate == 0.5
    assert 0 < summary.cost_usd < summary.strongest_cost_usd


async def test_the_summary_prices_the_strongest_model_at_its_cached_rate_for_cached_input(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """Always-strongest priced a cheap answer's cached input at the strongest model's full input
    price, so a batch whose prompts hit OpenAI's prompt cache over-stated its savings."""
    usage = {"prompt_tokens": 10_000, "completion_tokens": 100, "total_tokens": 10_100}
    usage["prompt_tokens_details"] = {"cached_tokens": 8_192}  # type: ignore[assignment]
    body = {
        "id": "chatcmpl-cached",
        "object": "chat.completion",
        "created": 1,
        "model": "small",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }
    server.script("small", Fail(200, body=body))
    cached = ModelPrices(input=2.0, output=8.0, cache_read=0.2)
    registry = ModelRegistry(
        [
            ModelSpec(
                id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=0.1, output=0.4)
            ),
            ModelSpec(id="large", provider="local", model="large", tier=2, prices=cached),
        ]
    )
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    async with Router(registry, policy=SignalScorer(), providers=[provider]) as router:
        results = await router.abatch(["What is the capital of France?"])
    assert results[0].response is not None and results[0].response.usage.cache_read_tokens == 8_192
    expected = cached.cost(Usage(10_000, 100, 8_192))
    assert summarize_batch(results, registry).strongest_cost_usd == pytest.approx(expected)
    journal = tmp_path / "out.jsonl"
    with journal.open("wb") as out:
        _write(out, results[0], "digest")
    assert summarize_batch(read_journal(journal).records, registry).strongest_cost_usd == pytest.approx(
        expected
    )


async def test_a_long_batch_keeps_only_its_calls_in_flight_as_tasks(server: LocalOpenAIServer) -> None:
    # A task for every item at once held memory for the whole batch (20,000 lines: 20,000 tasks).
    tasks: list[int] = []
    async with _router(server) as router:
        before = len(asyncio.all_tasks())
        results = await router.abatch(
            [f"question {n}" for n in range(60)],
            concurrency=3,
            cascade=True,
            on_result=lambda _: tasks.append(len(asyncio.all_tasks()) - before),
        )
    assert len([r for r in results if r.accepted]) == 60
    assert max(tasks) <= 3 + 2  # the workers, and the SDK's own connection tasks at most


async def test_a_result_that_cannot_be_recorded_stops_the_batch_and_cancels_its_other_calls(
    server: LocalOpenAIServer,
) -> None:
    """`on_result` raising (`gearshift batch` with a full disk) ended the batch with the other workers
    still running: their calls went on as the router closed, and their results reached a closed journal."""
    server.script("small", Reply("A."), Delay(30))

    def unrecordable(result: object) -> None:
        raise OSError(28, "No space left on device")

    async with _router(server) as router:
        with pytest.raises(OSError, match="No space left"):
            await router.abatch(["alpha", "beta"], concurrency=2, on_result=unrecordable)
        # beta's call was cut and settled, not left running as the router closes
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_judge_gates_calls_are_charged_to_the_item_they_judged(server: LocalOpenAIServer) -> None:
    server.script("small", Reply("Paris."), Reply("Lyon."))
    # The judge (the large model) passes the first answer and fails the second.
    server.script("large", Reply('{"score": 9}'), Reply('{"score": 2, "reason": "wrong city"}'))
    gate = LLMJudgeGate("large")
    async with _router(server) as router:
        results = await router.abatch(
            ["capital of France?", "capital of France, again?"], concurrency=1, cascade=True, gate=gate
        )
    cheap = [r for r in results if r.stage == "cheap"]
    assert [(r.id, r.accepted) for r in cheap] == [("0", True), ("1", False)]
    for result in cheap:
        assert result.response is not None
        assert [a.model_id for a in result.response.attempts] == ["small", "large"]  # answer, then judge
        assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.response.attempts))
    assert "wrong city" in cheap[1].reason
    assert [r.id for r in results if r.stage == "strong"] == ["1"]
    # Always-strongest is priced on the answer's tokens, not on the judge's (longer) prompt.
    assert cheap[0].response is not None
    answer, judge = cheap[0].response.attempts
    assert answer.usage != judge.usage
    strongest = summarize_batch([cheap[0]], _registry()).strongest_cost_usd
    assert strongest == pytest.approx(_registry()["large"].cost(answer.usage))


def _ledgered_router(server: LocalOpenAIServer, tmp_path: Path) -> Router:
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    ledger = BudgetLedger(SQLiteStore(tmp_path / "budgets.db"), [BudgetLimit(key="*", usd=10.0)])
    return Router(_registry(), policy=SignalScorer(), providers=[provider], budgets=ledger)


def _stop_at_commit(
    monkeypatch: pytest.MonkeyPatch, router: Router, model: str, batch: list[asyncio.Task]
) -> None:
    """Cancel the batch (Ctrl-C on `gearshift batch`) as `model`'s answer has come and its cost is being
    committed: the cancellation lands at the commit's wait for SQLite's thread."""
    ledger = router.budgets
    assert ledger is not None
    commit = ledger.commit

    async def commit_as_the_batch_stops(reservation: Reservation, **kwargs: Any) -> None:
        if reservation.model_id == model:
            batch[0].cancel()
        await commit(reservation, **kwargs)

    monkeypatch.setattr(ledger, "commit", commit_as_the_batch_stops)


async def _spent(router: Router) -> float:
    assert router.budgets is not None
    status = await router.budgets.status(["agent:anonymous"])
    return sum(limit.spent_usd for limit in status.limits)


async def test_an_answer_that_came_as_the_batch_was_stopped_is_recorded_not_lost(
    server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal between an answer and its journal line lost the answer the ledger charged, so the
    resumed `gearshift batch` bought it again (2 of 20 interrupted runs)."""
    server.script("large", Reply("B."))
    batch: list[asyncio.Task] = []
    results: list[BatchResult] = []
    async with _ledgered_router(server, tmp_path) as router:
        _stop_at_commit(monkeypatch, router, "large", batch)
        item = BatchItem("b", _request("beta"), escalate=True)  # its cheap answer was rejected earlier
        batch.append(asyncio.ensure_future(router.abatch([item], cascade=True, on_result=results.append)))
        with pytest.raises(asyncio.CancelledError):
            await batch[0]
        spent = await _spent(router)
    assert [(r.id, r.stage, r.accepted, r.error) for r in results] == [("b", "strong", True, None)]
    assert results[0].response is not None and results[0].response.response.text == "B."
    assert spent > 0 and results[0].cost_usd == pytest.approx(spent)


async def test_a_judges_answer_that_came_as_the_batch_was_stopped_is_not_bought_again(
    server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch stopped while the judge's verdict on a cheap answer was being committed: the cheap
    answer and the verdict were both lost, and the resumed batch asked the cheap model and the judge
    again. The cheap answer is now recorded unchecked, with what the judge said, and the resumed check
    asks neither model."""
    server.script("small", Reply("Paris."))
    server.script("large", Reply('{"score": 9, "reason": "right"}'))  # the judge
    gate = LLMJudgeGate("large")
    batch: list[asyncio.Task] = []
    results: list[BatchResult] = []
    async with _ledgered_router(server, tmp_path) as router:
        _stop_at_commit(monkeypatch, router, "large", batch)
        run = router.abatch(["capital of France?"], cascade=True, gate=gate, on_result=results.append)
        batch.append(asyncio.ensure_future(run))
        with pytest.raises(asyncio.CancelledError):
            await batch[0]
        spent = await _spent(router)
        ((cut,),) = [results]
        assert (cut.stage, cut.accepted, cut.checked, cut.error) == ("cheap", False, False, None)
        assert cut.response is not None and cut.response.response.text == "Paris."
        assert [a.text for a in cut.asked] == ['{"score": 9, "reason": "right"}']
        assert cut.cost_usd == pytest.approx(spent)  # the answer and the judge's call
        asked = len(server.requests)
        resumed = await router.abatch(
            [
                BatchItem(
                    cut.id, _request("capital of France?"), answer=cut.response.response, asked=cut.asked
                )
            ],
            cascade=True,
            gate=gate,
        )
    assert len(server.requests) == asked  # neither the cheap model nor the judge is asked again
    assert [(r.stage, r.accepted, r.cost_usd) for r in resumed] == [("cheap", True, 0.0)]
    assert resumed[0].response is not None and resumed[0].response.response.text == "Paris."


async def test_a_routed_item_stopped_while_the_routers_judge_checks_is_resumed_without_buying_again(
    server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `cascade`, `Router.acomplete` kept its answers to itself: the batch stopped as the
    router's own judge was checking the cheap answer (or as any answer's cost was being committed) lost
    what had come, and the resumed batch asked the cheap model and the judge again (1 of 20 interrupted
    runs). The cut-off result now keeps every answer the router received, and the resumed call is
    given them back: the router takes the same steps and no model is asked again."""
    server.script("small", Reply("Paris."))
    server.script("large", Reply('{"score": 9, "reason": "right"}'))  # the router's judge
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    ledger = BudgetLedger(SQLiteStore(tmp_path / "budgets.db"), [BudgetLimit(key="*", usd=10.0)])
    router = Router(
        _registry(),
        policy=SignalScorer(),
        providers=[provider],
        budgets=ledger,
        cascade=LLMJudgeGate("large"),
    )
    batch: list[asyncio.Task] = []
    results: list[BatchResult] = []
    async with router:
        _stop_at_commit(monkeypatch, router, "large", batch)
        batch.append(asyncio.ensure_future(router.abatch(["capital of France?"], on_result=results.append)))
        with pytest.raises(asyncio.CancelledError):
            await batch[0]
        spent = await _spent(router)
        ((cut,),) = [results]
        assert (cut.stage, cut.response) == ("routed", None) and cut.error is not None
        assert [(k.model_id, k.response.text) for k in cut.kept] == [
            ("small", "Paris."),
            ("large", '{"score": 9, "reason": "right"}'),
        ]
        assert cut.cost_usd == pytest.approx(spent)  # the answer and the judge's call
        asked = len(server.requests)
        resumed = await router.abatch([BatchItem(cut.id, _request("capital of France?"), kept=cut.kept)])
    assert len(server.requests) == asked  # neither the cheap model nor the judge is asked again
    assert [(r.stage, r.accepted, r.error, r.cost_usd) for r in resumed] == [("routed", True, None, 0.0)]
    assert resumed[0].response is not None and resumed[0].response.response.text == "Paris."


async def test_a_rate_limited_batch_waits_and_then_finishes(server: LocalOpenAIServer) -> None:
    server.script("small", Fail(429, retry_after=0.2), Fail(429, retry_after=0.2))
    started = time.perf_counter()
    async with _router(server) as router:
        results = await router.abatch(["a", "b", "c"], concurrency=3, cascade=True)
    assert sorted(r.id for r in results if r.accepted and r.error is None) == ["0", "1", "2"]
    assert time.perf_counter() - started >= 0.2  # the retry-after was honoured
    # Two calls were refused and tried again: five calls to the cheap model, none to the strong one.
    assert len(_asked(server, "small")) == 5
    assert _asked(server, "large") == []


async def test_without_cascade_each_item_is_routed_and_failures_do_not_stop_the_batch(
    server: LocalOpenAIServer,
) -> None:
    server.script("small", Fail(400))  # the caller's fault: no retry, no fallback
    items = [BatchItem("bad", _request("hello")), BatchItem("good", _request("hi there"))]
    async with _router(server) as router:
        results = await router.abatch(items, concurrency=1)
    by_id = {r.id: r for r in results}
    assert by_id["bad"].error is not None and by_id["bad"].response is None
    assert by_id["good"].error is None and by_id["good"].stage == "routed"


async def test_without_cascade_the_routers_own_gate_escalations_are_counted(
    server: LocalOpenAIServer,
) -> None:
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    router = Router(_registry(), policy=SignalScorer(), providers=[provider], cascade=HeuristicGate())
    server.script("small", Reply("Fine."), Reply(REFUSAL), Reply(REFUSAL))
    server.script("large", Reply("The second answer."), Fail(500))  # the third hand-over finds none
    async with router:
        results = await router.abatch(["one", "two", "three"], concurrency=1)
    assert [(r.stage, r.response.model_id if r.response else None) for r in results] == [
        ("routed", "small"),
        ("routed", "large"),
        ("routed", "small"),
    ]
    summary = summarize_batch(results, _registry())
    assert (summary.answered, summary.escalated) == (3, 1)  # a kept answer was never escalated


async def test_a_batch_item_that_cannot_be_routed_or_reuses_an_id_is_named_before_any_call(
    server: LocalOpenAIServer,
) -> None:
    async with _router(server) as router:
        # A list of OpenAI-style dicts is not a request: the error said "cannot route a list", of
        # which item it did not say.
        with pytest.raises(InvalidRequestError, match=r"^batch item 1: cannot route a list"):
            await router.abatch(["fine", [{"role": "user", "content": "hi"}]])
        # Two items under one id ran, and their results could not be told apart.
        twice = [BatchItem("q", _request("one")), BatchItem("q", _request("two"))]
        with pytest.raises(InvalidRequestError, match=r"^batch item 1: id 'q' is already used by item 0"):
            await router.abatch(twice, cascade=True)
        # A bare request's id is its index, which an item's own id may take too.
        with pytest.raises(InvalidRequestError, match=r"batch item 1: id '1' is already used by item 0"):
            await router.abatch([BatchItem("1", _request("one")), "two"])
    assert server.requests == []


def test_a_single_tier_batch_has_nothing_to_escalate_to(server: LocalOpenAIServer) -> None:
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    registry = ModelRegistry([_registry()["small"]])
    server.script("small", Reply(REFUSAL))
    router = Router(registry, policy=SignalScorer(), providers=[provider])
    try:
        results = router.batch(["one"], cascade=True)  # the sync bridge
    finally:
        run_sync(router.aclose())  # the clients live on the bridge's loop
    assert [(r.stage, r.accepted) for r in results] == [("cheap", True)]


def _request(text: str) -> ChatRequest:
    return ChatRequest((Message.user(text),))


CONFIG = """
[providers.local]
kind = "openai"
base_url = "{url}"
require_key = false

[[models]]
id = "small"
provider = "local"
model = "small"
tier = 1
prices = {{ input = 0.1, output = 0.4 }}

[[models]]
id = "large"
provider = "local"
model = "large"
tier = 2
prices = {{ input = 2.0, output = 8.0 }}
"""


def _batch_cli(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gearshift.cli",
        "batch",
        str(tmp_path / "in.jsonl"),
        str(tmp_path / "out.jsonl"),
        "--config",
        str(tmp_path / "gearshift.toml"),
        "--no-progress",
        *extra,
    ]


def _journal(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_an_interrupted_batch_resumes_without_paying_twice(server: LocalOpenAIServer, tmp_path: Path) -> None:
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    prompts = ["alpha", "beta", "gamma", "delta"]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": p, "prompt": p}) + "\n" for p in prompts))
    # beta's cheap answer is a refusal; delta's cheap call hangs until the process is killed.
    server.script("small", Reply("A."), Reply(REFUSAL), Reply("G."), Delay(60))
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        _batch_cli(tmp_path, "--cascade", "--concurrency", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while len(_journal(out)) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(_journal(out)) == 3, process.stderr.read().decode() if process.poll() is not None else ""
        while len(_asked(server, "small")) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # delta's call is on the wire
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()  # reaps it and closes its pipes
    first = _journal(out)
    assert [(r["id"], r["stage"], r["accepted"]) for r in first] == [
        ("alpha", "cheap", True),
        ("beta", "cheap", False),
        ("gamma", "cheap", True),
    ]
    before = len(server.requests)

    resumed = subprocess.run(
        _batch_cli(tmp_path, "--cascade", "--json"), capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 2 of 4 items already answered" in resumed.stderr
    again = [(r.model, r.body["messages"][-1]["content"]) for r in server.requests[before:]]
    # Only delta is asked of the cheap model again; beta goes straight to the strong one.
    assert sorted(again) == [("large", "beta"), ("small", "delta")]
    final = {r["id"]: r for r in _journal(out) if r["accepted"]}
    assert set(final) == set(prompts)
    assert final["beta"]["model"] == "large"
    summary = json.loads(resumed.stdout)
    assert summary["items"] == 4 and summary["answered"] == 4 and summary["escalated"] == 1
    assert summary["escalation_rate"] == 0.25
    assert summary["cost_usd"] == pytest.approx(sum(float(r["cost_usd"]) for r in _journal(out)))  # type: ignore[arg-type]
    assert summary["cost_usd"] < summary["always_strongest_usd"]


def test_a_bad_batch_line_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "prompt": "fine"}\n\n{"id": "b", "promt": "typo"}\n')
    with pytest.raises(OutcomeTableError, match=r"in\.jsonl line 3: unknown field 'promt'"):
        list(read_batch(path, _registry()))
    path.write_text('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n')
    with pytest.raises(OutcomeTableError, match=r"line 2: id 'a' was already used on line 1"):
        list(read_batch(path, _registry()))
    path.write_text('{"prompt": "x", "max_tokens": 0}\n')
    with pytest.raises(OutcomeTableError, match=r"line 1: max_tokens must be a positive integer, got 0"):
        list(read_batch(path, _registry()))
    # A line cut short in the middle of the file: the file's line, and the column in it.
    path.write_text('{"id": "a", "prompt": "one"}\n{"id": "b", "prompt": "two"\n{"id": "c", "prompt": "x"}\n')
    with pytest.raises(
        OutcomeTableError, match=r"line 2: not valid JSON: Expecting ',' delimiter at column 28$"
    ):
        list(read_batch(path, _registry()))
    path.write_bytes(b'{"id": "a", "prompt": "caf\xe9"}\n')
    with pytest.raises(
        OutcomeTableError, match=r"line 1: is not UTF-8 text \(invalid continuation byte at byte 27\)"
    ):
        list(read_batch(path, _registry()))


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_openai_shaped_batch_lines_are_answered_with_their_tools_and_ids(
    server: LocalOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a user brings: OpenAI messages with tools, and lines of OpenAI's Batch API input file
    # (custom_id, method, url, body). Both were refused as "unknown field 'messages'" / "'body'".
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    lines = [
        {"id": "chat", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER]},
        {
            "custom_id": "req-1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "large",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                "max_completion_tokens": 50,
                "metadata": {"agent_id": "mailer"},
            },
        },
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    server.script("small", Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    argv = _batch_cli(tmp_path, "--json")[3:]
    assert main(argv) == 0, capsys.readouterr().err
    chat = next(r for r in server.requests if r.body["messages"][-1]["content"] == "Weather in Paris?")
    assert [t["function"]["name"] for t in chat.body["tools"]] == ["get_weather"]
    batch_api = next(r for r in server.requests if r.body["messages"][-1]["content"] == "Hi")
    assert batch_api.model == "large"  # a model id of the config, read as the proxy reads it
    assert batch_api.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert batch_api.body.get("max_completion_tokens", batch_api.body.get("max_tokens")) == 50
    rows = {r["id"]: r for r in _journal(tmp_path / "out.jsonl")}
    assert set(rows) == {"chat", "req-1"}
    assert rows["chat"]["tool_calls"] == [
        {"id": rows["chat"]["tool_calls"][0]["id"], "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert "tool_calls" not in rows["req-1"]


def test_openai_shaped_batch_lines_that_cannot_be_routed_name_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}]}
    cases = [
        ({"custom_id": "e", "url": "/v1/embeddings", "body": {"model": "auto", "input": "x"}}, "only POST"),
        (
            {"custom_id": "m", "body": {**body, "model": "gpt-4o"}},
            "'gpt-4o' is not a model of the config: give 'auto'",
        ),
        ({"custom_id": "r", "body": {**body, "messages": [{"role": "robot", "content": "x"}]}}, "messages"),
        ({"custom_id": "x", "body": body, "extra": 1}, "unknown field 'extra'"),
        ({"id": "t", "messages": body["messages"], "tools": [42]}, "tools"),
        ({"custom_id": ["x"], "body": body}, "custom_id must be a string or a number"),
    ]
    for line, problem in cases:
        path.write_text('{"prompt": "fine"}\n' + json.dumps(line) + "\n")
        with pytest.raises(OutcomeTableError, match=r"in\.jsonl line 2: ") as caught:
            list(read_batch(path, _registry()))
        assert problem in str(caught.value), (line, str(caught.value))


def test_batch_without_any_key_says_which_variables_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    assert main(["batch", "in.jsonl", "out.jsonl", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY (provider 'anthropic')" in error and "OPENAI_API_KEY" in error
    assert not (tmp_path / "out.jsonl").exists()


def test_a_torn_last_journal_line_is_done_again_and_a_torn_middle_line_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = {
        "id": "a",
        "stage": "cheap",
        "accepted": True,
        "cost_usd": 0.001,
        "input_tokens": 9,
        "output_tokens": 3,
    }
    rejected = {**done, "id": "b", "accepted": False}
    out.write_text(json.dumps(done) + "\n" + json.dumps(rejected) + "\n" + '{"id": "c", "sta')
    journal = read_journal(out)
    assert (journal.done, journal.rejected) == ({"a"}, {"b"})
    assert [r.id for r in journal.records] == ["a", "b"]
    out.write_text('{"id": "c", "sta\n' + json.dumps(done) + "\n")
    with pytest.raises(OutcomeTableError, match=r"out\.jsonl line 1: not a gearshift batch result"):
        read_journal(out)


def test_a_run_after_a_torn_line_appends_whole_lines_and_the_next_run_reads_them(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "alpha"}\n{"id": "b", "prompt": "beta"}\n')
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a", "stage": "routed", "acc')  # killed while writing a's line
    first = subprocess.run(_batch_cli(tmp_path), capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert out.read_text().endswith("\n")
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == ["a", "b"]
    asked = len(server.requests)
    again = subprocess.run(_batch_cli(tmp_path, "--json"), capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "resuming: 2 of 2 items already answered" in again.stderr
    assert len(server.requests) == asked  # nothing paid twice
    assert json.loads(again.stdout)["answered"] == 2


def test_a_resumed_batch_whose_line_changed_under_an_answered_id_is_refused_before_any_call(
    server: LocalOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "prompt": "alpha"}\n{"id": "b", "prompt": "beta"}\n')
    argv = _batch_cli(tmp_path)[3:]
    assert main(argv) == 0
    # Key order and spacing are not a change; a later id is new work.
    source.write_text(
        '{"prompt":"alpha","id":"a"}\n{"id": "b", "prompt": "beta"}\n{"id": "c", "prompt": "gamma"}\n'
    )
    assert main(argv) == 0
    capsys.readouterr()
    asked = len(server.requests)
    # b's question changed under its id: its old answer was kept as the answer to the new one.
    source.write_text('{"id": "a", "prompt": "alpha"}\n{"id": "b", "prompt": "beta, but longer"}\n')
    assert main(argv) == 2
    assert re.search(
        r"in\.jsonl line 2: id 'b' was answered in .*out\.jsonl for another request", capsys.readouterr().err
    )
    assert len(server.requests) == asked  # nothing asked, nothing paid


def test_the_summary_of_a_resumed_batch_counts_only_the_items_of_its_in_file(
    server: LocalOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": p, "prompt": p}) + "\n" for p in ("a", "b", "c")))
    argv = _batch_cli(tmp_path, "--json")[3:]
    assert main(argv) == 0
    capsys.readouterr()
    source.write_text("".join(json.dumps({"id": p, "prompt": p}) + "\n" for p in ("a", "c")))
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    # b, dropped from IN, was still counted: 3 items answered for a 2-line IN, at b's cost too.
    assert (summary["items"], summary["answered"]) == (2, 2)
    kept = [float(r["cost_usd"]) for r in _journal(tmp_path / "out.jsonl") if r["id"] != "b"]  # type: ignore[arg-type]
    assert summary["cost_usd"] == pytest.approx(sum(kept))


def test_a_journal_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "a", "stage": "routed", "accepted": true, "text": "caf\xe9"}\n')
    with pytest.raises(OutcomeTableError, match=r"out\.jsonl line 1: not a gearshift batch result"):
        read_journal(out)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("stop", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143)],  # Ctrl-C; kill, timeout, docker stop, systemd
    ids=["ctrl-c", "sigterm"],
)
def test_a_batch_stopped_mid_way_exits_quietly_and_the_next_run_answers_only_the_rest(
    server: LocalOpenAIServer, tmp_path: Path, stop: signal.Signals, code: int
) -> None:
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "alpha"}\n{"id": "b", "prompt": "beta"}\n')
    server.script("small", Reply("A."), Delay(60))  # b's call hangs until Ctrl-C
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        _batch_cli(tmp_path, "--concurrency", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A suite run in the background by a non-interactive shell (as CI runs the other Pythons')
        # ignores SIGINT, and a child inherits that: Python then never raises KeyboardInterrupt.
        # A user's Ctrl-C reaches a foreground process, whose SIGINT is the default.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while _asked(server, "small") != ["alpha", "beta"] and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == code
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert [(r["id"], r["text"]) for r in _journal(out) if r.get("error") is None] == [("a", "A.")]
    # b's call, cut off on the wire, is charged at gearshift's estimate of its input (as the ledger
    # charges it): its line says so, or the summary would leave out what it cost.
    (cut,) = [r for r in _journal(out) if r.get("error") is not None]
    assert cut["id"] == "b" and cut["error"].startswith("cut off") and cut["cost_usd"] > 0
    assert out.read_text().endswith("\n")
    before = len(server.requests)
    resumed = subprocess.run(_batch_cli(tmp_path, "--json"), capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert [r.body["messages"][-1]["content"] for r in server.requests[before:]] == ["beta"]
    summary = json.loads(resumed.stdout)
    assert summary["answered"] == 2 and summary["failed"] == 0
    assert summary["cost_usd"] == pytest.approx(sum(float(r["cost_usd"]) for r in _journal(out)))  # type: ignore[arg-type]


def _stopped_while_the_judge_checks(
    server: LocalOpenAIServer, tmp_path: Path, *extra: str
) -> list[dict[str, object]]:
    """`gearshift batch` of one item, with an LLM judge as the cascade's gate, stopped (SIGTERM) while
    the judge is checking the cheap answer; the journal it left."""
    config = CONFIG + '\n[routing.cascade]\ngates = ["llm-judge"]\njudge_model = "large"\n'
    (tmp_path / "gearshift.toml").write_text(config.format(url=server.base_url))
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "capital of France?"}\n')
    server.script("small", Reply("Paris."))
    server.script("large", Delay(60), Reply('{"score": 9, "reason": "right"}'))  # the judge hangs first
    command = _batch_cli(tmp_path, *extra)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not [r for r in server.requests if r.model == "large"] and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 143, stderr
    return _journal(tmp_path / "out.jsonl")


def _resumed_after_the_judge_was_stopped(server: LocalOpenAIServer, tmp_path: Path, *extra: str) -> str:
    """Run the batch `_stopped_while_the_judge_checks` stopped again: only the judge is asked, and the
    summary's cost is what every line was charged: the answer and the judge's cut-off call, then the
    judge's answer. The final line's stage."""
    asked = len(server.requests)
    resumed = subprocess.run(
        _batch_cli(tmp_path, *extra, "--json"), capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r.model for r in server.requests[asked:]] == ["large"]  # the judge again, not the cheap model
    journal = _journal(tmp_path / "out.jsonl")
    ((stage, accepted, text),) = [(r["stage"], r["accepted"], r["text"]) for r in journal][1:]
    assert (accepted, text) == (True, "Paris.")
    summary = json.loads(resumed.stdout)
    assert (summary["answered"], summary["escalated"]) == (1, 0)
    costs = [float(r["cost_usd"]) for r in journal]  # type: ignore[arg-type]
    assert costs[0] > costs[1] > 0
    assert summary["cost_usd"] == pytest.approx(sum(costs))
    return str(stage)


def test_a_batch_stopped_while_the_judge_checks_an_answer_checks_it_on_resume_without_asking_again(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """Stopped while the judge was checking a cheap answer, `gearshift batch` lost that answer (the
    resumed run bought it again) and left the judge's cut-off call out of its summary."""
    (cut,) = _stopped_while_the_judge_checks(server, tmp_path, "--cascade")
    assert (cut["stage"], cut["accepted"], cut["checked"], cut["text"]) == ("cheap", False, False, "Paris.")
    assert _resumed_after_the_judge_was_stopped(server, tmp_path, "--cascade") == "cheap"


def test_a_routed_batch_stopped_while_the_routers_judge_checks_asks_only_the_judge_on_resume(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """Without `--cascade`, `gearshift batch` stopped as the router's own judge was checking an answer
    lost the answer it had bought: the resumed run asked the cheap model again."""
    (cut,) = _stopped_while_the_judge_checks(server, tmp_path)
    assert cut["stage"] == "routed" and str(cut["error"]).startswith("cut off")
    assert [one["text"] for one in cut["kept"]] == ["Paris."]  # type: ignore[attr-defined]
    assert _resumed_after_the_judge_was_stopped(server, tmp_path) == "routed"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc (nobody can create files there)")
def test_an_out_that_cannot_be_written_is_one_line_naming_it(
    server: LocalOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "alpha"}\n')
    argv = [
        "batch",
        str(tmp_path / "in.jsonl"),
        "/proc/out.jsonl",
        "--config",
        str(tmp_path / "gearshift.toml"),
    ]
    assert main([*argv, "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err == "gearshift: error: OUT /proc/out.jsonl: cannot write it (No such file or directory)\n"
    )
    assert server.requests == []  # nothing asked, nothing paid


def _small_disk() -> None:
    """A process whose files cannot grow past 600 bytes: the first journal line fits, the next does not
    (EFBIG, as a full disk's ENOSPC). Ignoring SIGXFSZ turns the kill into the write's error."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_an_out_that_fills_up_mid_batch_is_one_line_and_the_next_run_answers_only_the_rest(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """A journal line that could not be written (a full disk) ended the batch with three chained
    tracebacks and exit 1: the write's OSError escaped from the result callback, and closing the
    journal raised it again for the bytes still in its buffer."""
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": p, "prompt": p}) + "\n" for p in "abcd"))
    out = tmp_path / "out.jsonl"
    full = subprocess.run(
        _batch_cli(tmp_path, "--concurrency", "1"),
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_small_disk,
    )
    assert full.returncode == 2, full.stderr
    assert full.stderr == f"gearshift: error: OUT {out}: cannot write it (File too large)\n"
    assert [r["id"] for r in _journal(out)] == ["a"]
    asked = len(server.requests)
    assert asked == 2  # b's answer could not be journaled; c and d were never asked
    resumed = subprocess.run(_batch_cli(tmp_path, "--json"), capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r.body["messages"][-1]["content"] for r in server.requests[asked:]) == ["b", "c", "d"]
    assert sorted(r["id"] for r in _journal(out)) == ["a", "b", "c", "d"]


def _no_more_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_an_out_that_is_a_device_is_refused_before_any_call(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """OUT is read back to resume: /dev/full (or a pipe) was read to the end of the journal, which never
    comes, until memory ran out (a MemoryError traceback, or a hang)."""
    (tmp_path / "gearshift.toml").write_text(CONFIG.format(url=server.base_url))
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "alpha"}\n')
    argv = _batch_cli(tmp_path)
    argv[argv.index(str(tmp_path / "out.jsonl"))] = "/dev/full"
    refused = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=60, preexec_fn=_no_more_memory
    )
    assert refused.returncode == 2
    assert refused.stderr == "gearshift: error: OUT /dev/full: not a regular file; give a file path\n"
    assert server.requests == []
