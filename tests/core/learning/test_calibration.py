"""Calibration: a target share of strong calls, a quality floor or a cost cap, met on the data."""

from __future__ import annotations

import numpy as np
import pytest

from gearshift import ConfigError
from gearshift.datasets import OutcomeTable
from gearshift.learning import LearnedRouter, OperatingPoint, calibrate


@pytest.mark.parametrize("target", [0.1, 0.25, 0.5, 0.8])
def test_a_target_strong_share_is_met_within_two_points(
    trained: LearnedRouter, two_model_split: tuple[OutcomeTable, OutcomeTable], target: float
) -> None:
    held = two_model_split[1]
    point = calibrate(trained, held, target_strong_share=target)
    chosen = trained.choose(trained.predict(held.rows), tradeoff=point.tradeoff)
    share = float(np.mean(chosen == 1))
    assert abs(share - target) <= 0.02
    assert point.strong_share == pytest.approx(share)
    assert point.target == f"target_strong_share={target:g}"


def test_the_saved_curve_gives_targets_without_the_data(trained: LearnedRouter) -> None:
    # The curve holds the out-of-fold sweep of the training rows; shares read off it are exact to
    # the breakpoint quantiles (0.5%).
    assert trained.curve is not None and trained.curve.rows == trained.training.rows
    for target in (0.2, 0.6):
        point = trained.operating_point_for(target_strong_share=target)
        assert point.strong_share is not None and abs(point.strong_share - target) <= 0.02


def test_a_quality_floor_is_the_cheapest_point_that_clears_it(
    trained: LearnedRouter, two_model_split: tuple[OutcomeTable, OutcomeTable]
) -> None:
    held = two_model_split[1]
    predicted = trained.predict(held.rows)
    scores = np.array([[row.outcomes[m].score for m in trained.models] for row in held])
    floor = 0.8
    point = calibrate(trained, held, quality_floor=floor)
    chosen = trained.choose(predicted, tradeoff=point.tradeoff)
    quality = float(scores[np.arange(len(held)), chosen].mean())
    assert point.met and quality >= floor and point.quality == pytest.approx(quality)
    # Always sending to the strong model clears the floor too, but costs more.
    assert point.cost_per_request is not None and point.cost_per_request < 0.004


def test_a_cost_cap_is_the_best_point_under_it(
    trained: LearnedRouter, two_model_split: tuple[OutcomeTable, OutcomeTable]
) -> None:
    held = two_model_split[1]
    point = calibrate(trained, held, max_cost_per_request=0.002)
    assert point.met and point.cost_per_request is not None and point.cost_per_request <= 0.002
    cheaper = calibrate(trained, held, max_cost_per_request=0.001)
    assert cheaper.quality is not None and point.quality is not None and cheaper.quality <= point.quality
    # Below the cheapest model nothing fits: the cheapest point is kept and flagged.
    unreachable = calibrate(trained, held, max_cost_per_request=0.00001)
    assert not unreachable.met and unreachable.strong_share == 0.0


def test_calibration_is_pure(
    trained: LearnedRouter, two_model_split: tuple[OutcomeTable, OutcomeTable]
) -> None:
    before = trained.operating_point
    point = calibrate(trained, two_model_split[1], target_strong_share=0.3)
    assert trained.operating_point is before
    moved = trained.with_operating_point(point)
    assert moved.operating_point is point and trained.operating_point is before
    assert "target_strong_share=0.3" in point.describe()


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({}, "exactly one"),
        ({"target_strong_share": 0.3, "quality_floor": 0.5}, "exactly one"),
        ({"target_strong_share": 1.5}, r"in \[0, 1\]"),
        ({"max_cost_per_request": -1.0}, "non-negative"),
    ],
)
def test_bad_targets_are_refused(
    trained: LearnedRouter,
    two_model_split: tuple[OutcomeTable, OutcomeTable],
    targets: dict[str, float],
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        calibrate(trained, two_model_split[1], **targets)


def test_choose_is_a_threshold_on_the_gain_for_two_models(trained: LearnedRouter) -> None:
    predicted = np.array([[0.5, 0.9], [0.5, 0.6], [0.9, 0.5]])
    # Relative costs are 0.05 and 1: the strong model needs a gain above 0.95 x tradeoff.
    assert trained.choose(predicted, tradeoff=0.0).tolist() == [1, 1, 0]
    assert trained.choose(predicted, tradeoff=0.3).tolist() == [1, 0, 0]
    assert trained.choose(predicted, tradeoff=-1.0).tolist() == [1, 1, 1]
    assert trained.choose_with_floor(predicted, 0.55).tolist() == [1, 1, 0]
    assert trained.choose_with_floor(np.array([[0.1, 0.2]]), 0.9).tolist() == [1]
    with pytest.raises(ValueError, match="shape"):
        trained.choose(np.zeros((2, 3)), tradeoff=0.0)
    assert isinstance(trained.operating_point, OperatingPoint)


def test_missing_outcomes_count_at_their_predicted_quality_not_as_absent_rows() -> None:
    """A log's table lacks a middle tier's outcome where no shadow asked it, which depends on the
    prompt (here: 80% of the hard prompts, where that tier often fails). Averaging only the recorded
    outcomes put a sweep point 0.059 above the quality the complete table gives; with predicted
    quality in the gaps it is within 0.011."""
    from learning_tables import n_model_table

    from gearshift.datasets import OutcomeRow
    from gearshift.learning import train_router
    from gearshift.learning._calibration import curve_of

    complete = n_model_table(900, seed=1)
    rng = np.random.default_rng(3)

    def hide(row: OutcomeRow) -> OutcomeRow:
        hard = any(word in str(row.prompt) for word in ("integral", "prove", "eigenvalue"))
        if not (hard and rng.random() < 0.8):
            return row
        return OutcomeRow(
            row.id, row.task, row.prompt, {m: o for m, o in row.outcomes.items() if m != "medium"}
        )

    partial = OutcomeTable([hide(row) for row in complete])
    assert sum("medium" not in row.outcomes for row in partial) > 50
    router = train_router(complete)
    predicted = router.predict(complete.rows)
    truth = curve_of(router, complete, predicted).quality
    gaps = np.abs(curve_of(router, partial, predicted).quality - truth)
    assert float(gaps.max()) < 0.03, float(gaps.max())
