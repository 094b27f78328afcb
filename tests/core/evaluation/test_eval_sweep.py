"""The exact sweeps against brute force: every knob value between two events gives the same point."""

from __future__ import annotations

import numpy as np
import pytest
from eval_tables import SYNTHETIC_MODELS, hand_table, synthetic_table

from gearshift.evaluation import EvaluationError, OutcomeMatrix, sweep_difficulty, sweep_tradeoff
from gearshift.evaluation._sweep import band_choices


def _brute_tradeoff(values: np.ndarray, penalties: np.ndarray, t: float) -> np.ndarray:
    utility = values - t * penalties
    best = utility.max(axis=1, keepdims=True)
    tied = np.isclose(utility, best, rtol=0, atol=1e-12)
    return np.asarray(np.argmin(np.where(tied, penalties, np.inf), axis=1))


def _matrix(rng: np.random.Generator, n: int, m: int, *, costs: bool) -> OutcomeMatrix:
    scores = rng.integers(0, 3, (n, m)) / 2
    cost = rng.random((n, m)) * (np.arange(m) + 1)
    return OutcomeMatrix(tuple(f"m{i}" for i in range(m)), scores, cost if costs else None, m - 1)


@pytest.mark.parametrize("seed", range(6))
def test_the_tradeoff_sweep_holds_every_choice_a_brute_force_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = _matrix(rng, 25, 2 + seed % 3, costs=seed % 2 == 0)
    # Coarse predictions make ties, which must go to the lower penalty as at tradeoff 0.
    values = rng.integers(0, 4, matrix.scores.shape) / 3 if seed % 2 else rng.random(matrix.scores.shape)
    penalties = np.broadcast_to(rng.random(len(matrix.models)) * 3, values.shape)
    curve = sweep_tradeoff(matrix, "x", values, penalties)
    knobs = curve.tradeoffs
    assert knobs[0] == 0 and np.all(np.diff(knobs) >= 0)
    for i, t in enumerate(knobs):
        upper = knobs[i + 1] if i + 1 < len(knobs) else t + 10.0
        middle = (t + upper) / 2
        cost, quality, share = matrix.point(_brute_tradeoff(values, penalties, middle))
        assert (cost, quality, share) == pytest.approx(
            (curve.costs[i], curve.qualities[i], curve.strong_shares[i])
        )
    # Past the last event every row is on its lowest-penalty model.
    assert matrix.point(np.argmin(penalties, axis=1))[1] == pytest.approx(curve.qualities[-1])


@pytest.mark.parametrize("seed", range(4))
def test_the_difficulty_sweep_holds_every_band_assignment(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    m = 2 + seed % 3
    matrix = _matrix(rng, 30, m, costs=True)
    difficulty = rng.integers(0, 9, 30) / 8  # values equal to cut points on purpose
    cuts = [k / m for k in range(1, m)]
    curve = sweep_difficulty(matrix, "d", difficulty, cuts, operating=0.0)
    knobs = curve.tradeoffs
    for i, t in enumerate(knobs):
        probe = t if i == 0 else (t + knobs[i + 1]) / 2 if i + 1 < len(knobs) else t + 1.0
        assert matrix.point(band_choices(difficulty, cuts, probe))[1] == pytest.approx(curve.qualities[i])
    assert curve.strong_shares[0] == pytest.approx(1.0) and curve.strong_shares[-1] == 0.0
    # The operating point is the cut points as given, a score equal to a cut point going up.
    at = curve.operating
    assert at is not None
    assert matrix.point(band_choices(difficulty, cuts))[1] == pytest.approx(curve.qualities[at])


def test_the_matrix_orders_models_cheapest_first() -> None:
    matrix = OutcomeMatrix.from_table(synthetic_table(40))
    assert matrix.models == SYNTHETIC_MODELS
    assert matrix.mean_costs is not None and np.all(np.diff(matrix.mean_costs) > 0)
    assert matrix.strong == matrix.best == 3
    # Without costs the weaker model comes first and the share of the stronger one is the cost.
    plain = OutcomeMatrix.from_table(hand_table(costs=False))
    assert plain.models == ("weak", "strong") and plain.costs is None
    assert plain.point([1, 1, 0, 0]) == (0.5, 1.0, 0.5)


def test_a_table_with_fewer_than_two_common_models_is_refused() -> None:
    table = synthetic_table(5).filter(lambda row: True)
    single = type(table)(
        type(row)(row.id, row.task, row.prompt, {"tiny": row.outcomes["tiny"]}) for row in table
    )
    with pytest.raises(EvaluationError, match="at least two models"):
        OutcomeMatrix.from_table(single)


def test_predictions_of_the_wrong_shape_are_refused() -> None:
    matrix = OutcomeMatrix.from_table(hand_table())
    with pytest.raises(EvaluationError, match="shape"):
        sweep_tradeoff(matrix, "x", np.zeros((3, 2)), [0.0, 1.0])
    with pytest.raises(EvaluationError, match="cut points"):
        sweep_difficulty(matrix, "x", np.zeros(4), [0.6, 0.4])
