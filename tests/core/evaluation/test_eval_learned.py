"""Learned routers under evaluation: the sweep holds every choice `LearnedRouter.choose` makes, and a
router trained on one N-model table meets the routing targets on another."""

from __future__ import annotations

import numpy as np
import pytest
from eval_tables import SYNTHETIC_MODELS, synthetic_table

from gearshift.datasets import OutcomeRow, OutcomeTable
from gearshift.evaluation import EvaluationError, OutcomeMatrix, evaluate, sweep_tradeoff
from gearshift.learning import train_router


def test_the_sweep_holds_every_choice_the_router_makes() -> None:
    train, held = synthetic_table(200, seed=11), synthetic_table(120, seed=12)
    router = train_router(train, method="knn")
    assert router.models == SYNTHETIC_MODELS
    matrix = OutcomeMatrix.from_table(held)
    predicted = router.predict(held.rows)
    curve = sweep_tradeoff(matrix, "knn", predicted, router.relative_costs)
    knobs = curve.tradeoffs
    # Between two kinks, and past the last one. (At a kink itself the utilities tie only up to
    # rounding, so either side's choice is right there.)
    probes = np.concatenate([[0.0], (knobs[:-1] + knobs[1:]) / 2, knobs[-1:] + 5])
    assert len(knobs) > 20
    for t in probes:
        i = int(np.searchsorted(knobs, t, side="right")) - 1
        chosen = router.choose(predicted, tradeoff=float(t))
        assert matrix.point(chosen) == pytest.approx(
            (curve.costs[i], curve.qualities[i], curve.strong_shares[i])
        ), t


def test_a_router_trained_on_one_table_meets_the_targets_on_another() -> None:
    # The targets: the hull lies on or above every single model's point, and it keeps 95% of the best
    # single model's quality for at most a fifth of that model's cost.
    report = evaluate(
        synthetic_table(400, seed=100), train=synthetic_table(400, seed=0), policies=("knn",), seed=0
    )
    assert report.folds is None and report.train_rows == 400
    knn = report.policies["knn"]
    assert knn.above_models is True
    assert knn.cost_for_95 is not None and knn.cost_for_95 <= 0.2
    assert knn.apgr is not None and knn.apgr > report.policies["length"].apgr  # type: ignore[operator]
    # The operating point is the router's own (95% of the best model's quality on its training table).
    assert knn.quality is not None and knn.cost is not None
    best_cost, best_quality = report.models[report.strong]
    assert knn.quality >= 0.9 * best_quality and knn.cost < best_cost
    assert knn.latency is not None and knn.latency.samples == 200


def test_cross_validation_scores_every_row_out_of_fold() -> None:
    table = synthetic_table(90, seed=4)
    report = evaluate(table, policies=("knn",), folds=3)
    curve = report.policies["knn"].curve
    # The first point (tradeoff 0) to the last (every row on the cheapest model), over all 90 rows.
    assert curve.tradeoffs[0] == 0.0
    assert curve.points[-1] == pytest.approx(report.models["tiny"])
    assert report.folds == 3 and report.train_rows is None


def test_a_model_missing_on_some_rows_is_left_out_of_training_too_and_named() -> None:
    # "huge" has no outcome on every fourth row, so the evaluation compares tiny, small and large. The
    # learned router used to be trained with huge, chose it, and the whole evaluation was refused.
    full = synthetic_table(120, seed=5)
    table = OutcomeTable(
        OutcomeRow(
            row.id,
            row.task,
            row.prompt,
            {m: o for m, o in row.outcomes.items() if m != "huge" or i % 4},
        )
        for i, row in enumerate(full)
    )
    report = evaluate(table, policies=("knn",), folds=3)
    assert list(report.models) == ["tiny", "small", "large"]
    knn = report.policies["knn"]
    assert knn.apgr is not None and knn.apgr > 0.5
    assert (
        "left out huge (no outcome on 30 of the 120 rows): every policy and baseline is compared on "
        "the models that have an outcome on every row" in report.notes
    )
    # A training table with the same gap is cut to the evaluated models as well.
    trained = evaluate(table, train=table, policies=("knn",))
    assert list(trained.models) == ["tiny", "small", "large"] and trained.policies["knn"].quality is not None


def test_a_table_too_small_for_its_folds_says_so_in_the_table_s_terms() -> None:
    # 12 rows in 3 folds leave 8 to train each router on; the error used to say "the table has 8".
    with pytest.raises(EvaluationError) as caught:
        evaluate(synthetic_table(12, seed=1), policies=("knn",), folds=3)
    assert str(caught.value) == (
        "knn is cross-validated: with 3 folds a router trains on as few as 8 of the table's 12 rows, and "
        "training needs at least 10 rows; give a larger table, fewer --folds, or a training table (--train)"
    )
