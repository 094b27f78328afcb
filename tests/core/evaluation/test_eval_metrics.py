"""The metric functions against curves computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gearshift.evaluation import (
    RouterCurve,
    aiq,
    apgr,
    convex_hull_nondecreasing,
    cpt,
    curve_integral,
    pgr_curve,
)

# Four prompts, weak W and strong S: W gets rows 3 and 4 right (quality 0.5), S rows 1-3 (0.75). A
# router that sends them to S in the order 1, 4, 2, 3 passes through these strong-call shares:
#   share 0: W everywhere                  -> 0.50  (PGR 0)
#   share .25: row 1 to S (S right, W not) -> 0.75  (PGR 1)
#   share .5: row 4 to S (S wrong, W right) -> 0.50 (PGR 0)
#   share .75: row 2 to S                  -> 0.75  (PGR 1)
#   share 1: row 3 to S (both right)       -> 0.75  (PGR 1)
SHARES = [0.0, 0.25, 0.5, 0.75, 1.0]
QUALITY = [0.5, 0.75, 0.5, 0.75, 0.75]
WEAK, STRONG = 0.5, 0.75


def test_apgr_of_the_hand_computed_curve() -> None:
    # Trapezoids of width .25 over PGR 0,1,0,1,1: .125 + .125 + .125 + .25.
    assert apgr(SHARES, QUALITY, weak_quality=WEAK, strong_quality=STRONG) == pytest.approx(0.625)


def test_cpt_of_the_hand_computed_curve() -> None:
    # PGR rises from 0 to 1 between share 0 and .25: it crosses 50% at .125 and 80% at .2.
    assert cpt(SHARES, QUALITY, weak_quality=WEAK, strong_quality=STRONG, target=0.5) == pytest.approx(12.5)
    assert cpt(SHARES, QUALITY, weak_quality=WEAK, strong_quality=STRONG, target=0.8) == pytest.approx(20.0)


def test_aiq_of_the_hand_computed_hull() -> None:
    # Hull: (0, .5) -> (.25, .75), then level at .75 to share 1: .25 * .625 + .75 * .75 = .71875.
    assert aiq(SHARES, QUALITY, cost_range=(0.0, 1.0)) == pytest.approx(0.71875)
    hx, hy = convex_hull_nondecreasing(SHARES, QUALITY)
    assert hx.tolist() == [0.0, 0.25] and hy.tolist() == [0.5, 0.75]


def test_a_random_router_recovers_half_the_gap() -> None:
    # The random router's expected curve is the straight line between the two end points.
    line = np.linspace(0, 1, 11)
    quality = WEAK + line * (STRONG - WEAK)
    assert apgr(line, quality, weak_quality=WEAK, strong_quality=STRONG) == pytest.approx(0.5)
    assert apgr([], [], weak_quality=WEAK, strong_quality=STRONG) == pytest.approx(0.5)
    assert cpt(line, quality, weak_quality=WEAK, strong_quality=STRONG, target=0.5) == pytest.approx(50.0)
    assert cpt([], [], weak_quality=WEAK, strong_quality=STRONG, target=0.8) == pytest.approx(80.0)


def test_the_end_points_are_always_part_of_the_pgr_curve() -> None:
    curve = pgr_curve([0.5], [0.75], weak_quality=WEAK, strong_quality=STRONG)
    assert curve is not None
    x, pgr = curve
    assert x.tolist() == [0.0, 0.5, 1.0] and pgr.tolist() == [0.0, 1.0, 1.0]
    # One point at share .5 reaching the strong quality: area .25 + .5.
    assert apgr([0.5], [0.75], weak_quality=WEAK, strong_quality=STRONG) == pytest.approx(0.75)


def test_no_gap_leaves_pgr_undefined_and_an_unreached_target_has_no_cpt() -> None:
    assert apgr(SHARES, QUALITY, weak_quality=0.6, strong_quality=0.6) is None
    assert cpt(SHARES, QUALITY, weak_quality=0.6, strong_quality=0.6, target=0.5) is None
    assert cpt(SHARES, QUALITY, weak_quality=WEAK, strong_quality=STRONG, target=1.2) is None


def test_dollar_axis_maps_the_cost_range_onto_zero_one() -> None:
    # The hand-computed curve on a dollar axis from $0.002 (cheapest) to $0.010 (best model).
    dollars = [0.002 + s * 0.008 for s in SHARES]
    kwargs = {"weak_quality": WEAK, "strong_quality": STRONG, "cost_range": (0.002, 0.010)}
    assert apgr(dollars, QUALITY, **kwargs) == pytest.approx(0.625)  # type: ignore[arg-type]
    assert cpt(dollars, QUALITY, target=0.5, **kwargs) == pytest.approx(12.5)  # type: ignore[arg-type]
    assert aiq(dollars, QUALITY, cost_range=(0.002, 0.010)) == pytest.approx(0.71875)


def test_the_hull_is_non_decreasing_and_lies_on_or_above_every_point() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        x, y = rng.random(12), rng.random(12)
        hx, hy = convex_hull_nondecreasing(x, y)
        assert np.all(np.diff(hx) > 0) and np.all(np.diff(hy) > 0)
        # Every point at or beyond the hull's first cost lies on or under it (level past its end).
        inside = x >= hx[0]
        assert np.all(np.interp(x[inside], hx, hy) >= y[inside] - 1e-12)
        # Concave: slopes fall.
        slopes = np.diff(hy) / np.diff(hx)
        assert np.all(np.diff(slopes) <= 1e-9)


def test_aiq_counts_nothing_below_the_cheapest_point_and_keeps_level_past_the_last() -> None:
    # A single point at the middle of the range: nothing on [0, .5), level .8 on [.5, 1].
    assert aiq([0.5], [0.8], cost_range=(0.0, 1.0)) == pytest.approx(0.4)
    # Points past the range are cut off by it.
    assert aiq([0.0, 2.0], [0.0, 1.0], cost_range=(0.0, 1.0)) == pytest.approx(0.25)


def test_curve_integral_handles_vertical_steps_and_clipping() -> None:
    assert curve_integral([0, 0, 1], [0, 1, 1], low=0, high=1) == pytest.approx(1.0)
    assert curve_integral([0, 1], [0, 1], low=0.5, high=2) == pytest.approx(0.375)


def test_router_curve_reads_quality_and_cost_off_its_hull() -> None:
    curve = RouterCurve("demo", np.array(SHARES), np.array(QUALITY), np.array(SHARES), operating=1)
    assert curve.operating_point() == (0.25, 0.75)
    assert curve.quality_at_cost(0.125) == pytest.approx(0.625)
    assert curve.cost_at_quality(0.625) == pytest.approx(0.125)
    assert curve.cost_at_quality(0.9) is None
    assert curve.points[2] == (0.5, 0.5)
    with pytest.raises(ValueError, match="operating point"):
        RouterCurve("bad", np.zeros(2), np.zeros(2), np.zeros(2), operating=5)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        aiq([0, 1], [0], cost_range=(0, 1))
    with pytest.raises(ValueError, match="cost_range"):
        apgr([0], [0], weak_quality=0, strong_quality=1, cost_range=(1, 1))
    with pytest.raises(ValueError, match="finite"):
        aiq([0, np.nan], [0, 1], cost_range=(0, 1))
