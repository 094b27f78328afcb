"""The baselines on the hand-checkable table and on the bundled RouteLLM files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from eval_tables import hand_table

from gearshift.datasets import load_routellm
from gearshift.evaluation import (
    OutcomeMatrix,
    always_cheapest,
    always_strongest,
    apgr,
    cpt,
    oracle,
    prompt_length,
    random_router,
)
from gearshift.evaluation._baselines import length_percentiles, prompt_lengths


def _pgr_kwargs(matrix: OutcomeMatrix) -> dict[str, Any]:
    q = matrix.mean_scores
    return {"weak_quality": float(q[0]), "strong_quality": float(q[matrix.strong])}


@pytest.mark.parametrize("costs", [True, False])
def test_the_oracle_on_the_hand_table(costs: bool) -> None:
    # Strong alone is right on half the rows (b = .5), weak alone on a quarter (a = .25): the gap is
    # b - a = .25. The oracle point sends exactly the b rows to strong and gets every row right; on the
    # way there each strong-only row adds 1/4 quality, so PGR x% is reached at a share of x * (b - a).
    matrix = OutcomeMatrix.from_table(hand_table(costs=costs))
    curve = oracle(matrix)
    assert curve.operating is not None
    i = curve.operating
    assert curve.strong_shares[i] == pytest.approx(0.5) and curve.qualities[i] == pytest.approx(1.0)
    kwargs = _pgr_kwargs(matrix)
    assert cpt(curve.strong_shares, curve.qualities, target=0.5, **kwargs) == pytest.approx(12.5)
    assert cpt(curve.strong_shares, curve.qualities, target=1.0, **kwargs) == pytest.approx(25.0)
    # PGR: 0 -> 2 over share [0, .5], then 2 -> 1 over [.5, 1]: area .5 + .75.
    assert apgr(curve.strong_shares, curve.qualities, **kwargs) == pytest.approx(1.25)


def test_random_is_the_straight_line_and_recovers_half_the_gap() -> None:
    matrix = OutcomeMatrix.from_table(hand_table())
    curve = random_router(matrix)
    assert curve.operating is None
    assert curve.qualities[0] == pytest.approx(0.5) and curve.qualities[-1] == pytest.approx(0.75)
    assert np.allclose(np.diff(curve.qualities), 0.025) and np.allclose(np.diff(curve.costs), 0.0009)
    kwargs = _pgr_kwargs(matrix)
    assert apgr(curve.strong_shares, curve.qualities, **kwargs) == pytest.approx(0.5)
    assert cpt(curve.strong_shares, curve.qualities, target=0.8, **kwargs) == pytest.approx(80.0)


def test_the_fixed_baselines_are_the_single_models() -> None:
    matrix = OutcomeMatrix.from_table(hand_table())
    assert always_cheapest(matrix).points == [(0.001, 0.5)]
    [(cost, quality)] = always_strongest(matrix).points
    assert cost == pytest.approx(0.010) and quality == 0.75


def test_length_sends_the_longer_half_to_the_strong_model() -> None:
    table = hand_table()
    matrix = OutcomeMatrix.from_table(table)
    lengths = prompt_lengths(table.rows)
    assert np.all(np.diff(lengths) > 0)  # the hand table's prompts grow row by row
    assert length_percentiles(lengths).tolist() == [0.0, 0.25, 0.5, 0.75]
    curve = prompt_length(matrix, lengths)
    assert curve.operating is not None
    # Rows 3 and 4 (the longer half) go to strong: 1 + 1 + 1 + 0 right... of rows 1, 2 weak is wrong.
    assert curve.strong_shares[curve.operating] == pytest.approx(0.5)
    assert curve.qualities[curve.operating] == pytest.approx(0.25)
    assert len(curve) == 5  # all strong, then one row at a time down to all weak


@pytest.mark.parametrize("name", ["gsm8k", "mt-bench"])
def test_baselines_on_the_bundled_tables(name: str) -> None:
    table = load_routellm(name)  # type: ignore[arg-type]
    matrix = OutcomeMatrix.from_table(table)
    assert matrix.models == ("mixtral-8x7b-instruct", "gpt-4-1106-preview")
    weak, strong = (table.mean_score(m) for m in matrix.models)
    assert always_cheapest(matrix).qualities[0] == pytest.approx(weak)
    assert always_strongest(matrix).qualities[0] == pytest.approx(strong)
    line = random_router(matrix)
    assert apgr(
        line.strong_shares, line.qualities, weak_quality=weak, strong_quality=strong
    ) == pytest.approx(0.5)
    best = oracle(matrix)
    assert best.operating is not None
    scores = matrix.scores
    # The oracle point: each row's best score, from the cheapest model that has it.
    assert best.qualities[best.operating] == pytest.approx(scores.max(axis=1).mean())
    assert best.strong_shares[best.operating] == pytest.approx(np.mean(scores[:, 1] > scores[:, 0]))
    assert best.qualities.max() == best.qualities[best.operating]
    assert np.all(np.diff(best.costs) <= 1e-15)  # the tradeoff only ever saves money


def test_on_gsm8k_the_oracle_point_is_the_strong_only_share() -> None:
    matrix = OutcomeMatrix.from_table(load_routellm("gsm8k"))
    only_strong = np.mean((matrix.scores[:, 1] == 1) & (matrix.scores[:, 0] == 0))
    only_weak = np.mean((matrix.scores[:, 0] == 1) & (matrix.scores[:, 1] == 0))
    curve = oracle(matrix)
    assert curve.operating is not None
    assert curve.strong_shares[curve.operating] == pytest.approx(only_strong)
    assert curve.qualities[curve.operating] - curve.qualities[-1] == pytest.approx(only_strong)
    # Binary scores: the gap the oracle must close is exactly the strong-only minus the weak-only share.
    weak, strong = matrix.mean_scores
    assert strong - weak == pytest.approx(only_strong - only_weak)
