"""Shadow evaluation: sampled calls also go to the reference model in the background, a judge scores
both answers, and the pair becomes an outcome row that `export-outcomes` and `train --from-log` read.
The caller's answer is never delayed or changed, and a refused shadow is skipped."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from gearshift import (
    CallerHints,
    ConfigError,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    ScorerConfig,
    ShadowConfig,
    SignalScorer,
    StepContext,
    load_config,
    read_records,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.cli import main
from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable
from gearshift.escalation import CheapestPolicy
from gearshift.policies import Rule, RuleConditions, RulesPolicy
from gearshift.providers import OpenAIProvider, ReplayProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import Delay, Fail, LocalOpenAIServer, Reply

WEAK = ModelSpec(
    id="weak", provider="replay", model="weak", tier=1, prices=ModelPrices(input=0.1, output=0.2)
)
STRONG = ModelSpec(
    id="strong", provider="replay", model="strong", tier=2, prices=ModelPrices(input=5, output=10)
)
TABLE = OutcomeTable(
    OutcomeRow(
        f"q{i}",
        "quiz",
        f"Question number {i}: what is {i} plus {i}?",
        {
            "weak": Outcome(score=float(i % 2), cost_usd=0.001 * (i + 1), response=f"weak says {i}"),
            "strong": Outcome(score=1.0, cost_usd=0.01 * (i + 1), response=f"strong says {2 * i}"),
        },
    )
    for i in range(6)
)


def _replay_router(log: Path, table: OutcomeTable = TABLE, **shadow: object) -> Router:
    return Router(
        ModelRegistry([WEAK, STRONG]),
        policy=CheapestPolicy(),
        providers=[ReplayProvider(table)],
        decision_log=open_decision_log(log, include_prompts=True),
        shadow=ShadowConfig(**{"share": 1.0, "judge": "recorded", **shadow}),  # type: ignore[arg-type]
    )


async def test_every_sampled_call_gets_a_judged_pair_and_the_caller_keeps_its_answer(tmp_path: Path) -> None:
    router = _replay_router(tmp_path / "log.jsonl")
    results = [await router.acomplete(row.prompt_text) for row in TABLE]
    await router.aclose()
    assert [r.model_id for r in results] == ["weak"] * len(TABLE)  # shadows change no answer
    shadows = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "shadow"]
    assert [s["request_id"] for s in shadows] == [r.request_id for r in results]
    for row, shadow in zip(TABLE, shadows, strict=True):
        assert shadow["prompt"] == [{"role": "user", "content": row.prompt_text}]
        assert shadow["task"] == "quiz" and shadow["judge"] == "recorded"
        for model in ("weak", "strong"):
            assert shadow["outcomes"][model]["score"] == row.outcomes[model].score
            assert shadow["outcomes"][model]["cost_usd"] == pytest.approx(row.outcomes[model].cost_usd)
    # The shadow calls are charged and logged as the shadow agent's own requests.
    decisions = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "decision"]
    assert sum(d["agent_id"] == "shadow" for d in decisions) == len(TABLE)
    assert router.shadow is not None and router.shadow.spent_usd == pytest.approx(
        sum(row.outcomes["strong"].cost_usd or 0 for row in TABLE)
    )


async def test_export_outcomes_and_train_from_log_read_the_pairs_and_feedback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    router = _replay_router(log, share=0.5, seed=3)
    results = [await router.acomplete(row.prompt_text) for row in TABLE]
    router.feedback(results[0].request_id, 0.25)  # a user's score beats the judge's
    await router.aclose()
    shadowed = {r["request_id"] for r in read_records(log) if r["kind"] == "shadow"}
    assert 0 < len(shadowed) < len(TABLE)
    out = tmp_path / "rows.jsonl"
    # By default a model needs 50 scored rows, as `train --from-log` asks: this young log has fewer.
    assert main(["export-outcomes", "--log", str(log), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert out.read_text() == "" and summary["rows"] == 0 and set(summary["left_out"]) == {"weak", "strong"}
    argv = ["export-outcomes", "--log", str(log), "--out", str(out), "--min-rows", "1", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["left_out"] == {} and sorted(summary["models"]) == ["strong", "weak"]
    rows = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    expected = shadowed | {results[0].request_id}
    assert set(rows) == expected and summary["rows"] == len(expected)
    assert rows[results[0].request_id]["outcomes"]["weak"]["score"] == 0.25
    by_prompt = {row.prompt_text: row for row in TABLE}
    for rid in shadowed - {results[0].request_id}:
        recorded = by_prompt[rows[rid]["prompt"]]
        assert rows[rid]["outcomes"]["strong"]["score"] == recorded.outcomes["strong"].score
    too_few = ["train", "--from-log", str(log), "--out", str(tmp_path / "r.json"), "--min-rows", "50"]
    assert main(too_few) == 2
    assert "at least 50" in capsys.readouterr().err


def _local_router(
    server: LocalOpenAIServer, log_path: Path, shadow: ShadowConfig, *, timeout: float = 5.0
) -> Router:
    """A scorer router over the local server's `small` (tier 1) and `large` (tier 2), logging prompts."""
    provider = OpenAIProvider(base_url=server.base_url, require_key=False, timeout=timeout)
    registry = ModelRegistry(
        [
            ModelSpec(
                id="small",
                provider="openai",
                model="small",
                tier=1,
                prices=ModelPrices(input=0.1, output=0.4),
            ),
            ModelSpec(
                id="large", provider="openai", model="large", tier=2, prices=ModelPrices(input=2, output=8)
            ),
        ]
    )
    return Router(
        registry,
        policy=SignalScorer(),
        providers=[provider],
        decision_log=open_decision_log(log_path, include_prompts=True),
        shadow=shadow,
    )


async def test_a_shadow_runs_after_the_caller_has_its_answer(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("large", Delay(seconds=0.5))
        log_path = tmp_path / "log.jsonl"
        router = _local_router(server, log_path, ShadowConfig(share=1.0, judge="heuristic"))
        result = await router.acomplete("hello there", StepContext(agent_id="caller"))
        assert result.model_id == "small"
        assert router.shadow is not None and router.shadow.recorded == 0  # still waiting on large
        await router.aclose()
    assert router.shadow.recorded == 1
    (shadow,) = [r for r in read_records(log_path) if r["kind"] == "shadow"]
    assert set(shadow["outcomes"]) == {"small", "large"} and shadow["agent_id"] == "caller"
    assert all(0.0 <= o["score"] <= 1.0 for o in shadow["outcomes"].values())


async def test_a_shadow_in_flight_when_the_router_closes_is_finished_before_its_clients_close(
    tmp_path: Path,
) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("large", Delay(seconds=0.5))
        log_path = tmp_path / "log.jsonl"
        router = _local_router(server, log_path, ShadowConfig(share=1.0, judge="heuristic"))
        await router.acomplete("hello there", StepContext(agent_id="caller"))
        await asyncio.sleep(0.2)  # the shadow's call to large is on the wire now
        await router.aclose()
    assert router.shadow is not None and (router.shadow.recorded, router.shadow.skipped) == (1, 0)
    assert [r["kind"] for r in read_records(log_path)].count("shadow") == 1


HARD = "Please prove that the square root of two is irrational."


def _two_tier_router(server: LocalOpenAIServer, log_path: Path, shadow: ShadowConfig) -> Router:
    """Tier 1 holds `small` and the dearer `mid`, tier 2 `large`; a rule sends prompts that ask to
    prove something to tier 2, the scorer routes the rest (short ones to `small`)."""
    provider = OpenAIProvider(base_url=server.base_url, require_key=False, timeout=5.0)
    prices = {"small": ModelPrices(input=0.1, output=0.4), "mid": ModelPrices(input=0.5, output=2)}
    registry = ModelRegistry(
        [
            *(ModelSpec(id=m, provider="openai", model=m, tier=1, prices=p) for m, p in prices.items()),
            ModelSpec(
                id="large", provider="openai", model="large", tier=2, prices=ModelPrices(input=2, output=8)
            ),
        ]
    )
    policy = RulesPolicy([Rule(when=RuleConditions(keywords=("prove",)), tier=2)], fallback=SignalScorer())
    return Router(
        registry,
        policy=policy,
        providers=[provider],
        decision_log=open_decision_log(log_path, include_prompts=True),
        shadow=shadow,
    )


def _undocumented(record: dict[str, object]) -> list[str]:
    """The fields of `record` that docs/decision-log.md does not name."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "decision-log.md").read_text(encoding="utf-8")
    return [field for field in record if f"`{field}`" not in doc]


async def test_a_call_answered_at_the_top_tier_gets_a_downward_shadow_of_the_cheapest_model(
    tmp_path: Path,
) -> None:
    with LocalOpenAIServer(models=("small", "mid", "large")) as server:
        server.script("large", Reply("Suppose sqrt(2) = p/q in lowest terms; then p and q are both even."))
        server.script("small", Reply("It is irrational."))
        log_path = tmp_path / "log.jsonl"
        router = _two_tier_router(server, log_path, ShadowConfig(share=1.0, judge="heuristic"))
        result = await router.acomplete(HARD, StepContext(agent_id="caller"))
        forced = StepContext(agent_id="caller", hints=CallerHints(force_model="large"))
        await router.acomplete(HARD, forced)  # the caller's choice, not the router's: no shadow
        await router.aclose()
        asked = [r.model for r in server.requests]
    assert result.model_id == "large"
    assert result.response.text.startswith("Suppose")  # the caller keeps the top tier's answer
    assert sorted(asked) == ["large", "large", "small"]  # one cheap shadow, never the dearer `mid`
    records = list(read_records(log_path))
    (shadow,) = [r for r in records if r["kind"] == "shadow"]
    assert shadow["request_id"] == result.request_id and shadow["agent_id"] == "caller"
    assert shadow["direction"] == "down" and shadow["prompt"] == [{"role": "user", "content": HARD}]
    assert list(shadow["outcomes"]) == ["large", "small"]  # the caller's model first
    assert _undocumented(shadow) == []
    assert all(0.0 <= o["score"] <= 1.0 for o in shadow["outcomes"].values())
    (attempt,) = [r for r in records if r["kind"] == "attempt" and r["agent_id"] == "shadow"]
    assert attempt["model"] == "small" and attempt["request_id"] == shadow["shadow_request_id"]
    assert shadow["outcomes"]["small"]["cost_usd"] == pytest.approx(attempt["cost_usd"])
    assert router.shadow is not None and router.shadow.spent_usd == pytest.approx(attempt["cost_usd"])


async def test_with_downward_off_only_the_calls_below_the_reference_get_a_shadow(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "mid", "large")) as server:
        log_path = tmp_path / "log.jsonl"
        shadow = ShadowConfig(share=1.0, judge="heuristic", downward=False)
        router = _two_tier_router(server, log_path, shadow)
        hard = await router.acomplete(HARD, StepContext(agent_id="caller"))
        easy = await router.acomplete("hello there", StepContext(agent_id="caller"))
        await router.aclose()
    assert (hard.model_id, easy.model_id) == ("large", "small")
    shadows = [r for r in read_records(log_path) if r["kind"] == "shadow"]
    assert [(s["request_id"], s["direction"]) for s in shadows] == [(easy.request_id, "up")]
    assert list(shadows[0]["outcomes"]) == ["small", "large"]


async def test_a_downward_shadow_that_fails_is_skipped(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "mid", "large")) as server:
        server.script("small", Fail(500))
        log_path = tmp_path / "log.jsonl"
        router = _two_tier_router(server, log_path, ShadowConfig(share=1.0, judge="heuristic"))
        result = await router.acomplete(HARD, StepContext(agent_id="caller"))
        await router.aclose()
        assert server.pending("small") == 0  # the shadow did ask, and got the error
    assert result.model_id == "large" and result.response.text
    assert router.shadow is not None and (router.shadow.recorded, router.shadow.skipped) == (0, 1)
    assert not [r for r in read_records(log_path) if r["kind"] == "shadow"]


async def test_a_shadow_the_budget_refuses_is_skipped(tmp_path: Path) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="shadow cap", key="agent:shadow", usd=0.0000001)])
    router = Router(
        ModelRegistry([WEAK, STRONG]),
        policy=CheapestPolicy(),
        providers=[ReplayProvider(TABLE)],
        decision_log=open_decision_log(tmp_path / "log.jsonl", include_prompts=True),
        budgets=ledger,
        shadow=ShadowConfig(share=1.0, judge="recorded"),
    )
    result = await router.acomplete(TABLE[0].prompt_text)
    await router.aclose()
    assert result.model_id == "weak"
    assert router.shadow is not None and (router.shadow.recorded, router.shadow.skipped) == (0, 1)
    assert not [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "shadow"]


def test_shadow_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "gearshift.toml"
    config.write_text('[log]\npath = "log.jsonl"\n\n[routing.shadow]\nshare = 0.05\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routing\.shadow.*include_prompts"):
        Router.from_config(load_config(config))
    config.write_text(
        '[log]\npath = "log.jsonl"\ninclude_prompts = true\n\n[routing.shadow]\njudge = "llm-judge"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"routing\.shadow\.judge_model"):
        Router.from_config(load_config(config))
    config.write_text(
        '[log]\npath = "log.jsonl"\ninclude_prompts = true\n\n[routing.shadow]\nreference = "nope"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"routing\.shadow\.reference.*nope"):
        Router.from_config(load_config(config))
    with pytest.raises(ConfigError, match="decision log"):
        Router(
            ModelRegistry([WEAK, STRONG]),
            policy=CheapestPolicy(),
            providers=[ReplayProvider(TABLE)],
            shadow=ShadowConfig(),
        )


def _topic_table(n: int, *, tasks: bool) -> OutcomeTable:
    """Three kinds of prompt; the weak model answers only the first kind, the strong one all. With
    `tasks`, each kind has its own task label (else all are `quiz`)."""
    topics = ("what is the capital of", "prove the theorem about", "integrate the function")
    return OutcomeTable(
        OutcomeRow(
            f"p{i}",
            f"topic-{i % 3}" if tasks else "quiz",
            f"{topics[i % 3]} item {i}",
            {
                "weak": Outcome(score=float(i % 3 == 0), cost_usd=0.001),
                "strong": Outcome(score=1.0, cost_usd=0.02),
            },
        )
        for i in range(n)
    )


async def test_train_from_log_trains_a_router_on_the_shadow_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _topic_table(90, tasks=False)
    log = tmp_path / "log.jsonl"
    router = _replay_router(log, table, max_in_flight=100)
    for row in table:
        await router.acomplete(row.prompt_text)
    await router.aclose()
    out = tmp_path / "router.json"
    argv = [
        "train",
        "--from-log",
        str(log),
        "--out",
        str(out),
        "--method",
        "linear",
        "--min-rows",
        "60",
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["rows"] == 90 and sorted(summary["models"]) == ["strong", "weak"]
    from gearshift.learning import LearnedRouter
    from gearshift.learning._training import SHARED_FIT

    trained = LearnedRouter.load(out)
    # A log's few pairs: the two models' fits are shrunk toward one shared fit.
    assert trained.training.details == {"C": 0.3, "shared": SHARED_FIT}
    predicted = trained.predict(table.rows)
    weak = trained.models.index("weak")
    easy = [p[weak] for row, p in zip(table, predicted, strict=True) if "capital" in row.prompt_text]
    hard = [p[weak] for row, p in zip(table, predicted, strict=True) if "capital" not in row.prompt_text]
    assert sum(easy) / len(easy) > sum(hard) / len(hard)  # it learned where the weak model is right

    # Fine-tune only the operating point of the trained router on the live rows, for another target.
    tuned = tmp_path / "tuned.json"
    argv = ["train", "--from-log", str(log), "--router", str(out), "--target-strong-share", "0.5"]
    assert main([*argv, "--out", str(tuned), "--min-rows", "60", "--json"]) == 0
    point = json.loads(capsys.readouterr().out.splitlines()[-1])["operating_point"]
    # Three kinds of prompt, so three predicted gains: the nearest reachable share is a third away.
    assert "0.5" in str(point["target"]) and abs(point["strong_share"] - 0.5) <= 1 / 6 + 1e-9
    assert LearnedRouter.load(tuned).training == trained.training  # the predictor itself was kept
    assert main([*argv[:-2], "--out", str(tuned)]) == 2
    assert "--target-strong-share" in capsys.readouterr().err


async def test_train_from_log_learns_from_feedback_rows_beside_the_few_shadow_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _topic_table(120, tasks=True)
    log = tmp_path / "log.jsonl"
    router = _replay_router(log, table, share=0.15, seed=1, max_in_flight=200)
    for row in table:
        answer = await router.acomplete(row.prompt_text, StepContext(metadata={"task": row.task}))
        router.feedback(answer.request_id, answer.response.metadata["score"], source="test")
    await router.aclose()
    from gearshift.reporting._log_outcomes import table_from_log

    pairs, read = table_from_log(log, min_rows=5, feedback_rows=False)
    both, _ = table_from_log(log, min_rows=5)
    assert 5 <= len(pairs) < 40 and len(both) == len(table)  # every call is a row, the pairs first
    # The feedback rows keep the caller's task label (the decision record has it with the prompt).
    by_prompt = {row.prompt_text: row for row in table}
    for row in both:
        assert row.task == by_prompt[row.prompt_text].task
        assert row.outcomes["weak"].score == by_prompt[row.prompt_text].outcomes["weak"].score
    assert (
        sum(len(row.outcomes) == 1 for row in both)
        == len(table) - len(pairs)
        == read.feedback_records - len(pairs)
    )
    out = tmp_path / "router.json"
    argv = ["train", "--from-log", str(log), "--out", str(out), "--method", "linear", "--min-rows", "5"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["rows"] == len(table)


async def test_train_from_log_trains_on_downward_pairs_beside_upward_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _topic_table(90, tasks=False)
    log = tmp_path / "log.jsonl"
    # The theorems go to the strong model (a downward shadow asks the weak one), the rest to the weak.
    policy = RulesPolicy([Rule(when=RuleConditions(keywords=("prove",)), tier=2)], fallback=CheapestPolicy())
    router = Router(
        ModelRegistry([WEAK, STRONG]),
        policy=policy,
        providers=[ReplayProvider(table)],
        decision_log=open_decision_log(log, include_prompts=True),
        shadow=ShadowConfig(share=0.5, judge="recorded", seed=4, max_in_flight=100),
    )
    results = [await router.acomplete(row.prompt_text) for row in table]
    await router.aclose()
    answered = {r.request_id: r.model_id for r in results}
    shadows = [r for r in read_records(log) if r["kind"] == "shadow"]
    directions = {s["request_id"]: s["direction"] for s in shadows}
    assert {(answered[rid], d) for rid, d in directions.items()} == {("strong", "down"), ("weak", "up")}
    assert 10 < sum(d == "down" for d in directions.values()) < 20 < len(shadows) < 60  # of 30 and 90

    from gearshift.reporting._log_outcomes import table_from_log

    pairs, _ = table_from_log(log, min_rows=30, feedback_rows=False)
    by_prompt = {row.prompt_text: row for row in table}
    assert len(pairs) == len(shadows)
    for row in pairs:  # each direction's pair is an ordinary two-model row, with the recorded scores
        for model in ("weak", "strong"):
            assert row.outcomes[model].score == by_prompt[row.prompt_text].outcomes[model].score
    argv = ["train", "--from-log", str(log), "--out", str(tmp_path / "router.json"), "--method", "linear"]
    assert main([*argv, "--min-rows", "30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["rows"] == len(shadows)


async def test_streamed_calls_are_shadowed_too(tmp_path: Path) -> None:
    router = _replay_router(tmp_path / "log.jsonl")
    stream = router.astream(TABLE[1].prompt_text)
    text = "".join([event.text async for event in stream if hasattr(event, "text")])
    await router.aclose()
    assert stream.result is not None and text == "weak says 1"
    (shadow,) = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "shadow"]
    assert shadow["request_id"] == stream.result.request_id
    assert shadow["outcomes"]["strong"]["score"] == 1.0 and shadow["outcomes"]["weak"]["score"] == 1.0


async def test_an_llm_judge_grades_both_answers_on_the_shadow_account(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        log_path = tmp_path / "log.jsonl"
        router = _local_router(
            server, log_path, ShadowConfig(share=1.0, judge="llm-judge", judge_model="large")
        )
        result = await router.acomplete("hello there", StepContext(agent_id="caller"))
        await router.aclose()
        judged = [r for r in server.requests if r.model == "large"]
    records = list(read_records(log_path))
    (shadow,) = [r for r in records if r["kind"] == "shadow"]
    assert shadow["judge"] == "llm-judge" and shadow["request_id"] == result.request_id
    assert all(0.0 <= o["score"] <= 1.0 for o in shadow["outcomes"].values())
    assert len(judged) == 3  # the reference's answer, then one grade per answer
    shadow_calls = [r for r in records if r["kind"] == "decision" and r["agent_id"] == "shadow"]
    assert len(shadow_calls) == 3
    assert router.shadow is not None and router.shadow.spent_usd == pytest.approx(
        sum(r["cost_usd"] for r in records if r["kind"] == "attempt" and r["agent_id"] == "shadow")
    )


def _shadow_spend(log_path: Path) -> float:
    """What the decision log says the shadow agent's attempts cost, failed ones included."""
    return sum(
        r["cost_usd"] for r in read_records(log_path) if r["kind"] == "attempt" and r["agent_id"] == "shadow"
    )


async def test_a_failed_shadow_the_provider_was_paid_for_counts_toward_max_usd(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("large", Delay(2.0))  # past the 1 s timeout: the reference took it, then failed
        log_path = tmp_path / "log.jsonl"
        shadow = ShadowConfig(share=1.0, judge="heuristic", max_usd=0.000001)
        router = _local_router(server, log_path, shadow, timeout=1.0)
        await router.acomplete("hello there", StepContext(agent_id="caller"))
        assert router.shadow is not None
        await router.shadow.drain()
        await router.acomplete("hello again", StepContext(agent_id="caller"))
        await router.aclose()
        asked = [r.model for r in server.requests]
    assert _shadow_spend(log_path) > 0  # the timed-out shadow is charged its input
    assert router.shadow.spent_usd == pytest.approx(_shadow_spend(log_path))
    assert asked.count("large") == 1  # that spent the cap: the second call got no shadow
    assert (router.shadow.recorded, router.shadow.skipped) == (0, 2)


async def test_an_llm_judges_failed_calls_count_toward_what_shadows_spent(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("large", Reply("Hello to you."), Delay(2.0))  # the first grade times out
        log_path = tmp_path / "log.jsonl"
        shadow = ShadowConfig(share=1.0, judge="llm-judge", judge_model="large")
        router = _local_router(server, log_path, shadow, timeout=1.0)
        await router.acomplete("hello there", StepContext(agent_id="caller"))
        await router.aclose()
        judged = [r for r in server.requests if r.model == "large"]
    assert len(judged) == 2  # the reference's answer, then the grade that timed out: the shadow stops
    assert router.shadow is not None and (router.shadow.recorded, router.shadow.skipped) == (0, 1)
    assert router.shadow.spent_usd == pytest.approx(_shadow_spend(log_path))


@pytest.mark.parametrize(
    "failed_grade",
    [Reply("I would rather not grade this."), Fail(400)],
    ids=["garbage-reply", "provider-error"],
)
async def test_a_shadow_whose_llm_judge_cannot_grade_is_skipped_not_scored_zero(
    tmp_path: Path, failed_grade: Reply | Fail
) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("large", Reply("Hello to you."), failed_grade)  # the shadow, then its first grade
        log_path = tmp_path / "log.jsonl"
        shadow = ShadowConfig(share=1.0, judge="llm-judge", judge_model="large")
        router = _local_router(server, log_path, shadow)
        await router.acomplete("hello there", StepContext(agent_id="caller"))
        await router.aclose()
        judged = [r for r in server.requests if r.model == "large"]
    assert not [r for r in read_records(log_path) if r["kind"] == "shadow"]  # no made-up score to train on
    assert router.shadow is not None and (router.shadow.recorded, router.shadow.skipped) == (0, 1)
    assert len(judged) == 2  # the shadow stopped at its failed grade: the other answer was not graded
    assert router.shadow.spent_usd == pytest.approx(_shadow_spend(log_path)) and router.shadow.spent_usd > 0


async def test_max_usd_reached_by_a_running_shadow_stops_it_before_its_judge_calls(tmp_path: Path) -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        log_path = tmp_path / "log.jsonl"
        shadow = ShadowConfig(share=1.0, judge="llm-judge", judge_model="large", max_usd=0.000001)
        router = _local_router(server, log_path, shadow)
        await router.acomplete("hello there", StepContext(agent_id="caller"))
        await router.aclose()
        judged = [r for r in server.requests if r.model == "large"]
    assert len(judged) == 1  # the shadow call spent the cap: no grade was asked for
    assert router.shadow is not None and (router.shadow.recorded, router.shadow.skipped) == (0, 1)
    assert router.shadow.spent_usd == pytest.approx(_shadow_spend(log_path)) and router.shadow.spent_usd > 0


def test_sync_callers_get_their_shadows_once_the_router_closes(tmp_path: Path) -> None:
    router = _replay_router(tmp_path / "log.jsonl")
    result = router.complete(TABLE[2].prompt_text)  # through the sync bridge's loop
    router.close()  # waits for the shadow running on that loop, then closes the log
    shadows = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "shadow"]
    assert [s["request_id"] for s in shadows] == [result.request_id]


def _length_table(n: int) -> OutcomeTable:
    """Prompts from 1 to 3,000 words: the length scorer below spreads them over its difficulty."""
    return OutcomeTable(
        OutcomeRow(
            f"len{i}",
            "quiz",
            " ".join(["word"] * int(3000 ** (i / (n - 1)))) + f" #{i}",
            {"weak": Outcome(score=0.0, cost_usd=0.001), "strong": Outcome(score=1.0, cost_usd=0.02)},
        )
        for i in range(n)
    )


async def _margins_of_shadowed(
    log: Path, sampling: str, *, shuffled: bool = True
) -> tuple[list[float], list[float], list[float]]:
    """Replays `_length_table` (shuffled, or shortest first) through a length-only `SignalScorer` cut
    at 0.9 with shadow at 20% (both directions): the margins of the eligible calls, of the shadowed
    ones, and the shadows' recorded sample shares."""
    table = _length_table(300)
    rows = list(table)
    if shuffled:
        random.Random(5).shuffle(rows)
    scorer = SignalScorer(
        ScorerConfig(
            code_weight=0.0,
            length_weight=1.0,
            length_floor_tokens=2,
            length_ceiling_tokens=2_000,
            thresholds=(0.9,),
        )
    )
    router = Router(
        ModelRegistry([WEAK, STRONG]),
        policy=scorer,
        providers=[ReplayProvider(table)],
        decision_log=open_decision_log(log, include_prompts=True),
        shadow=ShadowConfig(share=0.2, judge="recorded", seed=3, sampling=sampling, max_in_flight=300),  # type: ignore[arg-type]
    )
    results = [await router.acomplete(row.prompt_text) for row in rows]
    await router.aclose()
    # Every call is eligible: the weak model's get an upward shadow, the strong model's a downward one.
    margin = {r.request_id: r.decision.scores["margin"] for r in results}
    shadows = [r for r in read_records(log) if r["kind"] == "shadow"]
    return (
        list(margin.values()),
        [margin[s["request_id"]] for s in shadows],
        [s["sample_share"] for s in shadows],
    )


async def test_uncertain_sampling_shadows_the_calls_near_the_cut_point_at_the_same_share(
    tmp_path: Path,
) -> None:
    eligible, uniform, uniform_shares = await _margins_of_shadowed(tmp_path / "uniform.jsonl", "uniform")
    _, uncertain, uncertain_shares = await _margins_of_shadowed(tmp_path / "uncertain.jsonl", "uncertain")
    assert len(eligible) == 300 and max(eligible) > 0.6 > 0.05 > min(eligible)
    mean = sum(eligible) / len(eligible)
    # Uniform: the shadowed calls look like the eligible ones; uncertain: they crowd the cut point.
    assert abs(sum(uniform) / len(uniform) - mean) < 0.1
    assert sum(uncertain) / len(uncertain) < mean / 2
    assert set(uniform_shares) == {0.2} and max(uncertain_shares) > 0.2 > min(uncertain_shares)
    # The same share overall: about 20% of the eligible calls each way.
    for shadowed in (uniform, uncertain):
        assert 0.1 * len(eligible) < len(shadowed) < 0.3 * len(eligible)


async def test_uncertain_sampling_stays_within_its_share_when_traffic_drifts_toward_the_cut_point(
    tmp_path: Path,
) -> None:
    # Shortest (easiest) first: the running mean of the weights lags far behind the calls near the cut.
    eligible, shadowed, _ = await _margins_of_shadowed(tmp_path / "log.jsonl", "uncertain", shuffled=False)
    assert 0.1 * len(eligible) < len(shadowed) <= 0.2 * len(eligible) + 20


def test_the_sampling_setting_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "gearshift.toml"
    config.write_text(
        '[log]\npath = "log.jsonl"\ninclude_prompts = true\n\n[routing.shadow]\nsampling = "uncertain"\n',
        encoding="utf-8",
    )
    router = Router.from_config(load_config(config))
    assert router.shadow is not None and router.shadow.config.sampling == "uncertain"
    config.write_text(
        '[log]\npath = "log.jsonl"\ninclude_prompts = true\n\n[routing.shadow]\nsampling = "busiest"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"routing\.shadow\.sampling"):
        Router.from_config(load_config(config))


async def test_train_from_log_finds_its_topics_over_the_calls_no_shadow_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gearshift import Message
    from gearshift.reporting._log_outcomes import outcomes_from_log

    table = _topic_table(120, tasks=False)
    log = tmp_path / "log.jsonl"
    router = _replay_router(log, table, max_in_flight=200, share=0.5)
    for i, row in enumerate(table):
        # Every other call has a system prompt: its logged prompt is a list of messages.
        system = [Message.system("Answer in one line.")] if i % 2 else []
        await router.acomplete([*system, Message.user(row.prompt_text)])
    await router.aclose()
    read = outcomes_from_log(read_records(log))

    def text(prompt: object) -> str:
        return prompt if isinstance(prompt, str) else prompt[-1]["content"]  # type: ignore[index]

    labeled = {text(row["prompt"]) for row in read.rows}
    assert 0 < len(labeled) < 120
    # Every other call's prompt (a decision record keeps its user's text), once, none of the judged ones.
    assert sorted(str(p.prompt) for p in read.unlabeled) == sorted(
        row.prompt_text for row in table if row.prompt_text not in labeled
    )
    out = tmp_path / "router.json"
    argv = ["train", "--from-log", str(log), "--out", str(out), "--min-rows", "30", "--no-progress"]
    assert main([*argv, "--method", "topics"]) == 0
    said = capsys.readouterr().out
    assert f"and {len(read.unlabeled)} logged prompts without outcomes" in said
    assert "method: topics" in said


def test_a_logged_prompt_of_messages_is_read_as_a_router_reads_it() -> None:
    from gearshift import Message
    from gearshift.learning import LoggedPrompt
    from gearshift.reporting._log_outcomes import outcomes_from_log

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a river."}]
    records = [
        {"kind": "decision", "request_id": "a", "prompt": messages},
        {"kind": "decision", "request_id": "b", "prompt": [{"role": "system", "content": "no user"}]},
        {"kind": "decision", "request_id": "c", "prompt": "Name a lake."},
    ]
    # A list of messages (a hand-written log, or one of another writer) becomes messages, and one that
    # is no prompt (no user message) is left out rather than break training.
    assert outcomes_from_log(records).unlabeled == [
        LoggedPrompt((Message("system", "Be brief."), Message("user", "Name a river."))),
        LoggedPrompt("Name a lake."),
    ]


async def test_a_logged_prompt_no_shadow_judged_keeps_the_task_label_its_call_was_routed_with(
    tmp_path: Path,
) -> None:
    from gearshift.learning import LoggedPrompt
    from gearshift.reporting._log_outcomes import outcomes_from_log

    table = _topic_table(60, tasks=True)
    log = tmp_path / "log.jsonl"
    router = _replay_router(log, table, max_in_flight=100, share=0.5)
    # The first ten calls come without a task label.
    labels = [row.task if i >= 10 else None for i, row in enumerate(table)]
    for row, label in zip(table, labels, strict=True):
        await router.acomplete(row.prompt_text, StepContext(metadata={"task": label} if label else {}))
    await router.aclose()
    read = outcomes_from_log(read_records(log))
    judged = {row["prompt"] for row in read.rows}
    # The router read each call with its caller's task label; a router trained on the log (its topics,
    # its pseudo-labels) reads the prompts no shadow judged with the same label, not without one.
    expected = [
        LoggedPrompt(row.prompt_text, label)
        for row, label in zip(table, labels, strict=True)
        if row.prompt_text not in judged
    ]
    assert 0 < len(read.unlabeled) < len(table)
    assert any(p.task is None for p in expected) and any(p.task is not None for p in expected)
    assert sorted(read.unlabeled, key=str) == sorted(expected, key=str)


def test_feedback_on_a_call_whose_hand_over_error_reached_its_caller_scores_no_model() -> None:
    from gearshift.reporting._log_outcomes import outcomes_from_log

    def call(rid: str, *, handover_error: bool) -> list[dict[str, object]]:
        small = {"kind": "attempt", "request_id": rid, "model": "small", "ok": True, "cost_usd": 0.001}
        large = {"kind": "attempt", "request_id": rid, "model": "large", "ok": False, "cost_usd": 0.0}
        outcome = "error" if handover_error else "kept"
        return [
            {"kind": "decision", "request_id": rid, "prompt": f"Capital of France? ({rid})"},
            small,
            large,
            {"kind": "escalation", "request_id": rid, "source": "self", "outcome": outcome},
            {"kind": "feedback", "request_id": rid, "score": 0.0},
        ]

    # The caller of "a" got the large model's error, not the small model's answer: its feedback made a
    # row scoring small 0.0 on an answer small never gave anyone (`gearshift report` counts "a"
    # unanswered). "b" kept the small model's answer after a failed hand-over: small did answer it.
    read = outcomes_from_log([*call("a", handover_error=True), *call("b", handover_error=False)])
    assert [(row["id"], list(row["outcomes"])) for row in read.rows] == [("b", ["small"])]
    assert (read.feedback_records, read.feedback_without_answer, read.feedback_without_call) == (2, 1, 0)


def test_a_later_score_from_the_same_source_replaces_its_earlier_one_in_the_row() -> None:
    from gearshift.reporting._log_outcomes import outcomes_from_log

    # A scorer that corrected itself (1, then 0) had both averaged into the row: 0.5, not its 0.
    records = [
        {"kind": "decision", "request_id": "r", "prompt": "Capital of France?"},
        {"kind": "attempt", "request_id": "r", "model": "small", "ok": True, "cost_usd": 0.001},
        *({"kind": "feedback", "request_id": "r", "score": s, "source": "agent"} for s in (1.0, 0.0, 0.0)),
        {"kind": "feedback", "request_id": "r", "score": 0.5, "source": "user"},
    ]
    read = outcomes_from_log(records)
    (row,) = read.rows
    assert row["outcomes"]["small"]["score"] == 0.25 and read.feedback_records == 4
