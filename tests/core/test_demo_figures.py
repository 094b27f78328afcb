"""The demo's figures against an independent computation on a small slice of the bundled data.

The demo replays each prompt through the router and reports shares, quality and cost. Here the same
slice is routed decision by decision, and every figure is recomputed with plain arithmetic from the
outcome rows: the chosen model's recorded score and cost, averaged or summed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gearshift import ChatRequest, ModelRegistry, Router, StepContext, read_records
from gearshift.cli._demo import run_demo
from gearshift.datasets import OutcomeTable, load_routellm, routellm_models
from gearshift.learning import DefaultPolicy
from gearshift.providers import ReplayProvider

SLICE = 30
"""Prompts per dataset: the demo's `--limit`, so its first rows."""


def test_the_demo_figures_match_a_plain_recomputation_from_the_outcome_rows(tmp_path: Path) -> None:
    policy = DefaultPolicy()
    reports = run_demo(datasets=("gsm8k", "mmlu"), limit=SLICE, log_path=tmp_path / "demo.db", policy=policy)
    cheapest, strongest = (spec.id for spec in routellm_models())
    assert [r.dataset for r in reports] == ["gsm8k", "mmlu"]
    for report in reports:
        rows = list(load_routellm(report.dataset, task_labels="category"))[:SLICE]
        router = Router(
            ModelRegistry(routellm_models()), policy=policy, providers=[ReplayProvider(OutcomeTable(rows))]
        )
        chosen = [
            router.decide(
                ChatRequest(messages=row.as_messages()), StepContext(metadata={"task": row.task})
            ).model
            for row in rows
        ]
        picked = [row.outcomes[model] for row, model in zip(rows, chosen, strict=True)]
        quality = sum(o.score for o in picked) / SLICE
        strongest_quality = sum(row.outcomes[strongest].score for row in rows) / SLICE
        cheapest_quality = sum(row.outcomes[cheapest].score for row in rows) / SLICE
        cost = sum(o.cost_usd or 0.0 for o in picked)
        strongest_cost = sum(row.outcomes[strongest].cost_usd or 0.0 for row in rows)
        # The slice routes both ways and the three qualities differ, so a figure taken from the wrong
        # column cannot match by chance.
        assert 0 < chosen.count(strongest) < SLICE
        assert len({quality, strongest_quality, cheapest_quality}) == 3

        assert report.requests == SLICE
        assert report.share == {
            cheapest: chosen.count(cheapest) / SLICE,
            strongest: chosen.count(strongest) / SLICE,
        }
        assert report.quality == pytest.approx(quality)
        assert report.strongest_quality == pytest.approx(strongest_quality)
        assert report.cheapest_quality == pytest.approx(cheapest_quality)
        assert report.cost_usd == pytest.approx(cost)
        assert report.strongest_cost_usd == pytest.approx(strongest_cost)
        assert report.quality_kept == pytest.approx(quality / strongest_quality)
        assert report.cost_share == pytest.approx(cost / strongest_cost)


def test_the_learned_demo_figures_match_its_decision_log(tmp_path: Path) -> None:
    # The demo as users run it (held-out learned routers): shares and cost recomputed from the log.
    log = tmp_path / "demo.db"
    reports = run_demo(datasets=("gsm8k", "mmlu"), limit=SLICE, log_path=log)
    records = list(read_records(log))
    for report in reports:
        decisions = [r for r in records if r["kind"] == "decision" and r["run_id"] == report.dataset]
        attempts = [r for r in records if r["kind"] == "attempt" and r["run_id"] == report.dataset]
        assert len(decisions) == len(attempts) == report.requests == SLICE
        assert {r["policy"] for r in decisions} == {"learned"}
        models = [r["model"] for r in attempts]
        assert report.share == {model: models.count(model) / SLICE for model in report.share}
        assert sum(report.share.values()) == pytest.approx(1.0)
        assert report.cost_usd == pytest.approx(sum(r["cost_usd"] for r in attempts))
