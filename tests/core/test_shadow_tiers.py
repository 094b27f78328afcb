"""Shadow pairs over three tiers: every tier gets asked (downward shadows spread over the tiers
below), `train --from-log` learns from every pair whatever models it holds, and the trained router
sends each kind of call to its own tier through a real `Router` on the local server. A model the log
cannot teach (too few rows, or scored only on the calls it answered itself) is left out and named;
two-model logs train exactly as before."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gearshift import (
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    ShadowConfig,
    StepContext,
    load_config,
    read_records,
)
from gearshift.cli import main
from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable, load_outcomes
from gearshift.escalation import CheapestPolicy
from gearshift.learning import LearnedRouter, train_router
from gearshift.policies import Rule, RuleConditions, RulesPolicy
from gearshift.providers import ReplayProvider
from gearshift.reporting._log_outcomes import outcomes_from_log, table_from_log
from gearshift.routing._decision_log import open_decision_log
from gearshift.routing._records import SCHEMA_VERSION
from gearshift.testing import LocalOpenAIServer

MODELS = ("small", "mid", "large")
PRICES = {"small": 0.1, "mid": 1.0, "large": 5.0}
COSTS = {"small": 0.001, "mid": 0.005, "large": 0.02}
KINDS = ("what is the capital of", "translate the sentence", "prove the theorem about")
# Who answers each kind right: the capitals all of them, the translations mid and large, the proofs large.
RIGHT = {0: {"small", "mid", "large"}, 1: {"mid", "large"}, 2: {"large"}}


def _registry(provider: str = "replay") -> ModelRegistry:
    return ModelRegistry(
        ModelSpec(
            id=m,
            provider=provider,
            model=m,
            tier=t,
            prices=ModelPrices(input=PRICES[m], output=2 * PRICES[m]),
        )
        for t, m in enumerate(MODELS, start=1)
    )


SHADES = ("red", "quiet", "ancient", "northern", "hollow", "bright", "frozen", "narrow", "gentle", "broken")
THINGS = ("river", "castle", "engine", "garden", "lantern", "harbor", "violin", "meadow", "tower", "bridge")


def _subject(i: int) -> str:
    """The subject of prompt `i`: 100 different ones, made of familiar words, no numbers."""
    return f"the {SHADES[i // 3 % 10]} {THINGS[i // 30 % 10]}"


def _table(n: int, start: int = 0) -> OutcomeTable:
    """Prompt `i` is of kind `i % 3` about `_subject(i)`; rows from `start`, none alike before 300."""
    return OutcomeTable(
        OutcomeRow(
            f"p{i}",
            "quiz",
            f"{KINDS[i % 3]} {_subject(i)}",
            {
                m: Outcome(score=float(m in RIGHT[i % 3]), cost_usd=COSTS[m], response=f"{m} answers {i}")
                for m in MODELS
            },
        )
        for i in range(start, start + n)
    )


def _tiered_policy() -> RulesPolicy:
    """The live policy: translations to tier 2, proofs to tier 3, the rest to the cheapest model."""
    return RulesPolicy(
        [
            Rule(when=RuleConditions(keywords=("translate",)), tier=2),
            Rule(when=RuleConditions(keywords=("prove",)), tier=3),
        ],
        fallback=CheapestPolicy(),
    )


async def _replay_log(log: Path, table: OutcomeTable, **shadow: Any) -> list[str]:
    """Replays `table` through the three tiers with shadows on; returns the model that answered each."""
    router = Router(
        _registry(),
        policy=_tiered_policy(),
        providers=[ReplayProvider(table)],
        decision_log=open_decision_log(log, include_prompts=True),
        shadow=ShadowConfig(
            **{"share": 1.0, "judge": "recorded", "seed": 2, "max_in_flight": 1000, **shadow}
        ),
    )
    answered = [(await router.acomplete(row.prompt_text)).model_id for row in table]
    await router.aclose()
    return answered


async def test_three_tier_shadows_ask_the_reference_above_and_a_drawn_tier_below(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    answered = await _replay_log(log, _table(150))
    assert Counter(answered) == {"small": 50, "mid": 50, "large": 50}
    shadows = [r for r in read_records(log) if r["kind"] == "shadow"]
    asked = Counter((next(iter(s["outcomes"])), list(s["outcomes"])[1], s["direction"]) for s in shadows)
    # Upward shadows ask the reference (the rule, and what the report's quality kept compares
    # with); downward ones a tier drawn among those below: the top tier's calls of small or mid, so the
    # middle model is scored beyond the calls the live policy sent it.
    assert set(asked) == {
        ("small", "large", "up"),
        ("mid", "large", "up"),
        ("large", "small", "down"),
        ("large", "mid", "down"),
    }
    assert asked["small", "large", "up"] == 50
    assert asked["mid", "large", "up"] == 50
    # Drawn at random, neither side starved.
    assert asked["large", "small", "down"] + asked["large", "mid", "down"] == 50
    assert min(asked.values()) > 10


async def test_train_from_log_trains_a_three_model_router_that_sends_each_kind_to_its_tier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    await _replay_log(log, _table(150))
    out = tmp_path / "router.json"
    argv = ["train", "--from-log", str(log), "--out", str(out), "--method", "linear", "--min-rows", "20"]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["models"] == ["small", "mid", "large"] and summary["rows"] == 150
    assert summary["left_out"] == {}
    # export-outcomes writes the very rows train read.
    rows = tmp_path / "rows.jsonl"
    assert main(["export-outcomes", "--log", str(log), "--out", str(rows), "--min-rows", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 150
    exported = [json.loads(line) for line in rows.read_text().splitlines()]
    assert Counter(frozenset(r["outcomes"]) for r in exported) == Counter(
        frozenset(r["outcomes"]) for r in outcomes_from_log(read_records(log)).rows
    )

    # The trained router as `routing.policy = "learned"` of a Router over the same three tiers, served
    # by the local server, at its default operating point: unseen prompts of each kind go to the
    # cheapest model that answers them (a router trained on the most common pair alone never picks mid).
    with LocalOpenAIServer(models=MODELS) as server:
        config = tmp_path / "gearshift.toml"
        models = "".join(
            f'[[models]]\nid = "{m}"\nprovider = "local"\nmodel = "{m}"\ntier = {t}\n'
            f"prices = {{ input = {PRICES[m]}, output = {2 * PRICES[m]} }}\n\n"
            for t, m in enumerate(MODELS, start=1)
        )
        config.write_text(
            f'[providers.local]\nkind = "openai"\nbase_url = "{server.base_url}"\nrequire_key = false\n\n'
            f'{models}[routing]\npolicy = "learned"\n\n[routing.learned]\npath = "{out}"\n',
            encoding="utf-8",
        )
        router = Router.from_config(load_config(config))
        picked: Counter[tuple[str, str]] = Counter()
        for row in _table(30, start=150):  # prompts the log never held
            result = await router.acomplete(row.prompt_text, StepContext(agent_id="app"))
            assert result.decision.policy == "learned" and server.requests[-1].model == result.model_id
            picked[row.prompt_text.split(" the ", 1)[0], result.model_id] += 1
        await router.aclose()
    assert picked == {("what is", "small"): 10, ("translate", "mid"): 10, ("prove", "large"): 10}


def _write_old_log(path: Path, table: OutcomeTable, extra: list[tuple[str, str, str]]) -> None:
    """A log as shadows wrote it before they spread over the tiers: each call answered below the top
    tier asked large, each call of large asked small, so mid only ever scored its own calls. `extra`
    adds (prompt, answered, asked) pairs of other models, both scored 1."""
    answers = {0: "small", 1: "mid", 2: "large"}
    calls = [
        (
            row.prompt_text,
            {m: row.outcomes[m].score for m in (answers[i % 3], "small" if i % 3 == 2 else "large")},
        )
        for i, row in enumerate(table)
    ]
    calls += [(prompt, {answered: 1.0, asked: 1.0}) for prompt, answered, asked in extra]
    log = open_decision_log(path, include_prompts=True)
    for n, (prompt, scores) in enumerate(calls):
        log.write(
            {
                "schema": SCHEMA_VERSION,
                "kind": "shadow",
                "ts": time.time(),
                "request_id": f"req-{n}",
                "agent_id": "app",
                "run_id": None,
                "task": "quiz",
                "prompt": [{"role": "user", "content": prompt}],
                "judge": "recorded",
                "direction": "down" if next(iter(scores)) == "large" else "up",
                "sample_share": 1.0,
                "shadow_request_id": f"shadow-{n}",
                "outcomes": {  # the caller's model first, then the shadow's
                    m: {
                        "score": score,
                        "cost_usd": COSTS.get(m, 0.002),
                        "input_tokens": 10,
                        "output_tokens": 5,
                    }
                    for m, score in scores.items()
                },
            }
        )
    log.close()


def test_a_model_no_shadow_asked_or_scored_on_too_few_rows_is_left_out_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "old.jsonl"
    # `rare` answered three calls; a shadow asked `small` of each.
    _write_old_log(
        log, _table(90), [(f"what is the capital of rare item {i}", "rare", "small") for i in range(3)]
    )
    out = tmp_path / "router.json"
    argv = ["train", "--from-log", str(log), "--out", str(out), "--method", "linear", "--min-rows", "20"]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.splitlines()[-1])
    assert summary["models"] == ["small", "large"] and summary["rows"] == 93
    assert set(summary["left_out"]) == {"mid", "rare"}
    assert "never by a shadow" in summary["left_out"]["mid"] and "30 calls" in summary["left_out"]["mid"]
    assert summary["left_out"]["rare"] == "scored on 3 rows, fewer than --min-rows 20"
    assert "left out mid (scored only on the 30 calls it answered" in captured.err
    # The pairs mid was in still score large; the router sends the proofs to large, not to mid.
    trained = LearnedRouter.load(out)
    predicted = trained.predict(_table(3, start=9000).rows)
    assert predicted[2][1] > predicted[2][0] + 0.3

    # export-outcomes writes the rows train read, and names the same models.
    rows = tmp_path / "rows.jsonl"
    argv = ["export-outcomes", "--log", str(log), "--out", str(rows), "--min-rows", "20"]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert "left out mid (" in line and "rare (scored on 3 rows, fewer than --min-rows 20)" in line
    exported = [json.loads(text) for text in rows.read_text().splitlines()]
    table, _ = table_from_log(log, min_rows=20)
    assert [r["id"] for r in exported] == [r.id for r in table]
    assert all(set(r["outcomes"]) <= {"small", "large"} for r in exported)

    # Too few rows: the error says what the log holds, what was left out, and what is needed.
    assert main(["train", "--from-log", str(log), "--out", str(out), "--min-rows", "61"]) == 2
    err = capsys.readouterr().err
    assert "60 outcome rows with two or more models" in err and "93 shadow records" in err
    assert "left out mid (" in err and "at least 61 (--min-rows)" in err


def _old_training_rows(read: Any) -> list[dict[str, Any]]:
    """The rows train --from-log kept before: the most common model set, and its models' feedback."""
    sets = Counter(frozenset(r["outcomes"]) for r in read.rows if len(r["outcomes"]) >= 2)
    common = sets.most_common(1)[0][0]
    return [
        r
        for r in read.rows
        if frozenset(r["outcomes"]) == common or (len(r["outcomes"]) == 1 and set(r["outcomes"]) <= common)
    ]


async def test_a_two_model_log_trains_exactly_as_before(tmp_path: Path) -> None:
    table = _table(120)
    two = ModelRegistry([m for m in _registry() if m.id != "mid"])
    log = tmp_path / "log.jsonl"
    router = Router(
        two,
        policy=_tiered_policy(),
        providers=[ReplayProvider(table)],
        decision_log=open_decision_log(log, include_prompts=True),
        shadow=ShadowConfig(share=0.3, judge="recorded", seed=5, max_in_flight=1000),
    )
    for row in table:
        answer = await router.acomplete(row.prompt_text)
        router.feedback(answer.request_id, answer.response.metadata["score"], source="test")
    await router.aclose()
    read = outcomes_from_log(read_records(log))
    assert {frozenset(r["outcomes"]) for r in read.rows} == {
        frozenset({"small", "large"}),
        frozenset({"small"}),
        frozenset({"large"}),
    }
    old = _old_training_rows(read)
    new, _ = table_from_log(log, min_rows=20)
    assert 20 < sum(len(r["outcomes"]) == 2 for r in old) < len(old) == len(new) == len(table)
    assert [(r.id, {m: o.score for m, o in r.outcomes.items()}) for r in new] == [
        (r["id"], {m: o["score"] for m, o in r["outcomes"].items()}) for r in old
    ]
    saved = tmp_path / "old_rows.jsonl"
    saved.write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    before = train_router(load_outcomes(saved), method="linear")
    after = train_router(new, method="linear")
    unseen = _table(6, start=7000).rows
    assert before.models == after.models == ("small", "large")
    assert (before.predict(unseen) == after.predict(unseen)).all()
    assert before.operating_point == after.operating_point
