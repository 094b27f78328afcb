"""The chance APGR: a coin with a policy's own tiers at its shares, on tables checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from eval_tables import hand_table, synthetic_table

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable
from gearshift.evaluation import OutcomeMatrix, evaluate, sweep_difficulty, sweep_tradeoff
from gearshift.evaluation._baselines import chance
from gearshift.evaluation._evaluate import _axes, _result


def _table(prices: dict[str, float], scores: dict[str, list[float]], prompts: list[str]) -> OutcomeTable:
    return OutcomeTable(
        [
            OutcomeRow(
                f"row-{i}",
                "hand",
                prompt,
                {m: Outcome(scores[m][i], price) for m, price in prices.items()},
            )
            for i, prompt in enumerate(prompts)
        ]
    )


def _chance_apgr(matrix: OutcomeMatrix, curve: object) -> float | None:
    return _result(matrix, _axes(matrix), curve, baseline=False, latency=None, swept=True).chance_apgr  # type: ignore[arg-type]


def test_on_three_models_the_coin_takes_the_policys_shares_not_the_line_through_the_models() -> None:
    # A $1 (scores 0), B $2 (0.5), C $4 (1): on the normalized axis A (0, 0), B (1/3, 1/2), C (1, 1).
    table = _table({"A": 1.0, "B": 2.0, "C": 4.0}, {"A": [0, 0], "B": [1, 0], "C": [1, 1]}, ["x", "y"])
    matrix = OutcomeMatrix.from_table(table)
    # Row 0 at difficulty 0, row 1 at 0.5, cut at 1/3 and 2/3: as the knob rises the rows step down
    # C C -> B C -> A C -> A B -> A A, so two points mix A with C, which no neighbouring pair does.
    curve = sweep_difficulty(matrix, "banded", [0.0, 0.5], [1 / 3, 2 / 3])
    assert curve.model_shares is not None
    assert curve.model_shares.tolist() == [[0, 0, 1], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0], [1, 0, 0]]
    coin = chance(matrix, curve)
    assert coin is not None
    # Expected points: (B+C)/2 = ($3, .75), (A+C)/2 = ($2.5, .5), (A+B)/2 = ($1.5, .25), and the ends.
    assert coin.points == [(1.0, 0.0), (1.5, 0.25), (2.5, 0.5), (3.0, 0.75), (4.0, 1.0)]
    # Trapezoids over x = 0, 1/6, 1/2, 2/3, 1 of PGR 0, 1/4, 1/2, 3/4, 1: 1/48 + 6/48 + 5/48 + 14/48.
    assert _chance_apgr(matrix, curve) == pytest.approx(13 / 24)
    # Not the line through A, B and C (7/12): this knob never sends the rows to B alone.
    assert 13 / 24 < 7 / 12


def _five_models(prompts: list[str]) -> OutcomeTable:
    # $1 to $5 per request (normalized 0, 1/4, 1/2, 3/4, 1); D costs more than B and scores no better.
    return _table(
        {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0, "E": 5.0},
        {
            "A": [0, 0, 0, 0],
            "B": [1, 1, 0, 0],
            "C": [1, 1, 1, 0],
            "D": [1, 1, 0, 0],
            "E": [1, 1, 1, 1],
        },
        prompts,
    )


def test_a_ranking_that_tells_no_prompt_from_another_scores_its_chance() -> None:
    matrix = OutcomeMatrix.from_table(_five_models(["a", "b", "c", "d"]))
    # Every row at one difficulty: the rows move together through A .. E, each single model's point.
    curve = sweep_difficulty(matrix, "blind", np.zeros(4), [0.2, 0.4, 0.6, 0.8])
    result = _result(matrix, _axes(matrix), curve, baseline=False, latency=None, swept=True)
    # PGR 0, 1/2, 3/4, 1/2, 1 at 0, 1/4, 1/2, 3/4, 1: (1/2 + 5/4 + 5/4 + 3/2) / 8 = 9/16, not 0.5.
    assert result.chance_apgr == pytest.approx(9 / 16)
    assert result.apgr == pytest.approx(9 / 16)


def test_evaluate_reports_the_chance_of_each_policy_over_its_own_tiers() -> None:
    # One prompt four times: every policy ranks the rows alike, so each curve is its tiers' points.
    report = evaluate(
        _five_models(["What is the capital of France?"] * 4), policies=("default", "scorer"), folds=2
    )
    # The default leaves out D (costlier than B, no better): A, B, C, E give PGR 0, 1/2, 3/4, 1 at
    # 0, 1/4, 1/2, 1, an area of 1/16 + 5/32 + 7/16 = 21/32. Scorer and length use all five: 9/16.
    chances = {name: result.chance_apgr for name, result in report.policies.items()}
    assert chances == {
        "random": None,
        "always-cheapest": None,
        "always-strongest": None,
        "oracle": None,
        "length": pytest.approx(9 / 16),
        "default": pytest.approx(21 / 32),
        "scorer": pytest.approx(9 / 16),
    }
    assert report.policies["default"].apgr == pytest.approx(21 / 32)
    assert report.to_dict()["policies"]["default"]["chance_apgr"] == pytest.approx(21 / 32)
    [note] = [n for n in report.notes if n.startswith("chance APGR")]
    assert "default 0.656" in note and "not above 0.5" in note


def test_on_two_models_the_chance_is_exactly_a_half() -> None:
    report = evaluate(hand_table(), policies=("default", "scorer"), folds=2)
    assert [r.chance_apgr for r in report.policies.values() if r.chance_apgr is not None] == [0.5] * 3
    # A learned router's sweep starts at its own choices, not at either end, over many rows: still 0.5.
    # (Summed point by point, these three are a rounding off: 0.49999999999999994, 0.5000000000000001.)
    for seed, rows in ((1, 1000), (5, 400), (6, 400)):
        table = synthetic_table(rows, seed=seed).with_models(["tiny", "huge"])
        matrix = OutcomeMatrix.from_table(table)
        guesses = np.random.default_rng(seed).random(matrix.scores.shape)
        assert matrix.mean_costs is not None
        curve = sweep_tradeoff(matrix, "guess", guesses, matrix.mean_costs, operating=None)
        assert len(curve) > 100
        assert _chance_apgr(matrix, curve) == 0.5
