"""The share feedback controller: integral correction on the realised count of strong decisions."""

from __future__ import annotations

import random

import pytest

from gearshift.learning._share_control import StrongShareController, strong_share_for_quality_floor


def test_an_excess_of_strong_decisions_lowers_the_asked_share_and_a_shortfall_raises_it() -> None:
    control = StrongShareController(0.3, horizon=10)
    assert control.share() == pytest.approx(0.3)
    for _ in range(3):
        control.record(True)
    assert control.debt == pytest.approx(2.1) and control.share() == pytest.approx(0.3 - 0.21)
    for _ in range(10):
        control.record(False)
    assert control.debt == pytest.approx(-0.9) and control.share() > 0.3
    assert (control.decisions, control.strong) == (13, 3)


def test_the_debt_is_bounded_so_a_long_stretch_does_not_wind_it_up() -> None:
    control = StrongShareController(0.3, horizon=5)
    for _ in range(1000):
        control.record(True)
    assert control.debt == pytest.approx(20.0)  # 4 horizons by default
    assert control.share() == pytest.approx(0.3 - 4.0)  # past 0: the threshold goes past the window
    for _ in range(29):
        control.record(False)
    assert control.debt == pytest.approx(20.0 - 29 * 0.3)


def test_closing_the_loop_holds_every_window_where_a_fixed_threshold_drifts() -> None:
    # Scores drift upward; a threshold fitted on the first stretch would send ever more calls up.
    rng = random.Random(3)
    control = StrongShareController(0.3, horizon=10)
    fixed, held = [], []
    for step in range(3000):
        score = rng.random() + step / 3000
        fixed.append(score > 0.7)
        # What the window's quantile would map the asked share to, for this stretch's uniform scores.
        threshold = step / 3000 + (1 - control.share())
        decision = score > threshold
        control.record(decision)
        held.append(decision)
    windows = range(0, 3000, 500)
    assert max(abs(sum(fixed[i : i + 500]) - 150) for i in windows) > 100
    assert max(abs(sum(held[i : i + 500]) - 150) for i in windows) <= 2 * control.bound
    assert max(abs(sum(held[i : i + 500]) - 150) for i in windows) <= 8


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        StrongShareController(1.5)
    with pytest.raises(ValueError, match="horizon"):
        StrongShareController(0.3, horizon=0.5)
    with pytest.raises(ValueError, match="bound"):
        StrongShareController(0.3, horizon=10, bound=5)


def test_a_quality_floor_sends_up_the_fewest_requests_with_the_largest_gains() -> None:
    weak = [0.5, 0.5, 0.5, 0.5]
    gains = [0.4, 0.0, 0.2, -0.1]
    assert strong_share_for_quality_floor(weak, gains, 0.5) == 0.0
    assert strong_share_for_quality_floor(weak, gains, 0.6) == 0.25  # 0.5 + 0.4 / 4
    assert strong_share_for_quality_floor(weak, gains, 0.65) == 0.5  # 0.5 + 0.6 / 4
    # Out of reach: every request the strong model improves, and no more.
    assert strong_share_for_quality_floor(weak, gains, 0.9) == 0.5
    assert strong_share_for_quality_floor([], [], 0.9) == 0.0
