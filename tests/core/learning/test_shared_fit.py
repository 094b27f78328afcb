"""Shared fits: on a small table the models' logistic regressions are shrunk toward one shared fit."""

from __future__ import annotations

import numpy as np
import pytest
from learning_tables import n_model_table, two_model_table

from gearshift.datasets import OutcomeTable
from gearshift.learning import train_router
from gearshift.learning._features import FeatureSpec, build_features, prompt_inputs
from gearshift.learning._fitting import Design, FitData, fill_missing, fit_logistic, fit_shared_logistic
from gearshift.learning._training import ROUTER_TEXT_DIMS, SHARED_FIT, SHARED_FIT_ROWS, shared_fit_for


def _design(table: OutcomeTable) -> tuple[Design, np.ndarray]:
    spec = FeatureSpec(ROUTER_TEXT_DIMS, None, 0, True, ())
    scores = np.array([[row.outcomes[m].score for m in table.models] for row in table])
    data = FitData(spec, build_features(spec, prompt_inputs(table.rows)), scores, fill_missing(scores))
    return Design.of(data), scores


def _predicted(design: Design, weights: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-(design.x @ weights + intercepts))))


def test_a_shared_fit_ties_the_models_weights_and_keeps_their_base_rates() -> None:
    design, scores = _design(two_model_table(120, seed=3))
    rows = np.arange(len(scores))
    alone, alone_b = fit_logistic(design, scores, rows, 0.3)
    shared, shared_b = fit_shared_logistic(design, scores, rows, 0.3, SHARED_FIT)
    assert shared.shape == alone.shape and shared_b.shape == alone_b.shape
    # The models' weights move together: closer to each other than two independent fits.
    assert np.linalg.norm(shared[:, 1] - shared[:, 0]) < 0.7 * np.linalg.norm(alone[:, 1] - alone[:, 0])
    assert np.corrcoef(shared[:, 0], shared[:, 1])[0, 1] > np.corrcoef(alone[:, 0], alone[:, 1])[0, 1]
    # ... but each model keeps its own base rate (the strong one is right more often).
    mean = _predicted(design, shared, shared_b).mean(axis=0)
    assert mean == pytest.approx(scores.mean(axis=0), abs=0.03)
    assert mean[1] > mean[0]


def test_a_shared_fit_reads_soft_scores_missing_outcomes_and_more_models() -> None:
    design, scores = _design(n_model_table(150, seed=2))
    scores = 0.1 + 0.8 * scores  # soft scores
    scores[::7, 0] = np.nan  # a model without an outcome on some rows
    weights, intercepts = fit_shared_logistic(design, scores, np.arange(len(scores)), 0.3, SHARED_FIT)
    assert weights.shape == (design.x.shape[1], 4)
    mean = _predicted(design, weights, intercepts).mean(axis=0)
    assert mean == pytest.approx(np.nanmean(scores, axis=0), abs=0.03)


def test_a_shared_fit_of_one_class_is_a_constant_prediction() -> None:
    design, scores = _design(two_model_table(40, seed=4))
    weights, intercepts = fit_shared_logistic(design, np.ones_like(scores), np.arange(40), 0.3, SHARED_FIT)
    assert not weights.any()
    assert np.all(_predicted(design, weights, intercepts) > 0.99)


def test_train_router_shares_the_fit_it_is_asked_to_and_refuses_a_share_out_of_range() -> None:
    table = two_model_table(90, seed=6)
    assert train_router(table, method="linear", shared_fit=SHARED_FIT).training.details == {
        "C": 0.3,
        "shared": SHARED_FIT,
    }
    assert train_router(table, method="linear").training.details == {"C": 0.3}
    with pytest.raises(ValueError, match=r"shared_fit must be at least 0 and below 1, got 1\.0"):
        train_router(table, shared_fit=1.0)


def test_gearshift_train_shares_the_fit_on_a_shadow_sized_two_model_table_only() -> None:
    assert shared_fit_for(400, 2) == SHARED_FIT
    assert shared_fit_for(SHARED_FIT_ROWS, 2) == 0.0
    assert shared_fit_for(150, 3) == 0.0  # three tiers: each model's hard prompts differ


@pytest.mark.parametrize("shared", [0.0, SHARED_FIT])
def test_a_row_weight_of_two_counts_the_row_twice(shared: float) -> None:
    import scipy.sparse as sparse

    design, scores = _design(two_model_table(80, seed=8))
    row_weights = np.ones(len(scores))
    row_weights[:25] = 2.0
    x = sparse.vstack([design.x, design.x[:25]], format="csr")
    twice = Design(x, design.mean, design.scale, design.task_fill)
    doubled = np.vstack([scores, scores[:25]])

    def fit(on: Design, y: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(y))
        if shared:
            return fit_shared_logistic(on, y, rows, 0.3, shared, row_weights=weights)
        return fit_logistic(on, y, rows, 0.3, row_weights=weights)

    weighted, weighted_b = fit(design, scores, row_weights)
    repeated, repeated_b = fit(twice, doubled, None)
    assert weighted == pytest.approx(repeated, abs=2e-3)
    assert weighted_b == pytest.approx(repeated_b, abs=2e-3)
