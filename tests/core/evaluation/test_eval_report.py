"""`evaluate` on N-model tables: the report's shape, the cost axis, and the routing targets."""

from __future__ import annotations

import numpy as np
import pytest
from eval_tables import SYNTHETIC_MODELS, synthetic_table

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable
from gearshift.evaluation import BASELINES, EvaluationError, OutcomeMatrix, evaluate, sweep_tradeoff
from gearshift.evaluation._evaluate import _axes, _result


def test_the_report_of_an_n_model_table() -> None:
    table = synthetic_table(200)
    report = evaluate(table, policies=("scorer", "length"), folds=2)
    assert list(report.policies) == [*BASELINES, "scorer"]
    assert list(report.models) == list(SYNTHETIC_MODELS) and report.costs_known
    assert report.strong == "huge"  # the best single model
    data = report.to_dict()
    assert data["cost_unit"] == "usd" and data["rows"] == 200
    # For N models the PGR axis is dollars from the cheapest to the best model: random is its diagonal.
    assert data["policies"]["random"]["apgr"] == pytest.approx(0.5)
    assert data["policies"]["random"]["cpt80"] == pytest.approx(80.0)
    oracle = report.policies["oracle"]
    assert oracle.above_models is True
    assert oracle.cost_for_95 is not None and oracle.cost_for_95 < 0.2
    for name in ("always-cheapest", "always-strongest"):
        assert report.policies[name].above_models is False  # one point cannot cover the others


def test_an_informative_router_covers_every_single_model_at_a_fifth_of_the_cost() -> None:
    # Predictions that know each row's outcomes up to noise: its hull must lie on or above every single
    # model's point and reach 95% of the best model's quality for at most a fifth of that model's cost.
    table = synthetic_table(600, seed=3)
    matrix = OutcomeMatrix.from_table(table)
    noisy = matrix.scores + np.random.default_rng(0).normal(0, 0.3, matrix.scores.shape)
    assert matrix.mean_costs is not None
    curve = sweep_tradeoff(matrix, "informed", noisy, matrix.mean_costs)
    result = _result(matrix, _axes(matrix), curve, baseline=False, latency=None)
    assert result.above_models is True
    assert result.cost_for_95 is not None and result.cost_for_95 <= 0.2
    assert result.aiq is not None and result.apgr is not None and result.apgr > 0.5
    # A router that knows nothing (constant predictions) only ever picks the cheapest model.
    blind = sweep_tradeoff(matrix, "blind", np.zeros_like(noisy), matrix.mean_costs)
    assert len(blind) == 1 and blind.strong_shares[0] == 0.0


def test_unknown_policies_and_bad_folds_are_refused() -> None:
    table = synthetic_table(20)
    with pytest.raises(EvaluationError, match="unknown policy 'magic'"):
        evaluate(table, policies=("magic",))
    with pytest.raises(EvaluationError, match="folds"):
        evaluate(table, policies=("knn",), folds=21)


def test_a_costlier_model_that_scores_worse_on_average_leaves_no_gap_to_recover() -> None:
    # The costlier model is right on one prompt of four, the cheaper on the other three. RouteLLM's gap
    # from the cheaper to the costlier is negative there: the oracle, which scores 1.0 on every prompt,
    # came out with an APGR of 0.125, and the random router with 0.5.
    rows = [
        OutcomeRow(
            f"r{i}",
            "t",
            f"prompt {i}",
            {"cheap": Outcome(float(i != 0), 0.001), "pricey": Outcome(float(i == 0), 0.01)},
        )
        for i in range(4)
    ]
    report = evaluate(OutcomeTable(rows), policies=("length",), folds=2)
    assert report.strong == "cheap"
    assert all(result.apgr is None and result.cpt50 is None for result in report.policies.values())
    assert report.policies["oracle"].quality == 1.0 and report.policies["oracle"].aiq is not None
    assert report.notes[0] == (
        "APGR and CPT: none, as no model scores better on average than cheap (cheapest, 0.750): there is "
        "no quality gap for a router to recover"
    )
