"""Budget pacing: the per-call allowance, from where each limit stands. Pure, so no store."""

from __future__ import annotations

import pytest

from gearshift.budgets import BudgetMode, BudgetStatus, LimitStatus, pace


def limit(
    mode: str = "hard",
    *,
    usd: float | None = 1.0,
    tokens: int | None = None,
    spent: float = 0.0,
    reserved: float = 0.0,
    spent_tokens: int = 0,
    key: str = "run:abc",
) -> LimitStatus:
    return LimitStatus(
        f"{key} {mode}", key, BudgetMode(mode), "lifetime", usd, tokens, spent, spent_tokens, reserved, 0
    )


def status(*limits: LimitStatus) -> BudgetStatus:
    return BudgetStatus(("agent:a", "run:abc"), limits)


def test_without_limits_nothing_is_constrained() -> None:
    allowance = pace(status(), step_index=3, expected_steps=10)
    assert (allowance.max_usd, allowance.max_tokens, allowance.hard_max_usd) == (None, None, None)
    assert (allowance.left_share, allowance.downgrade) == (None, False)
    assert allowance.reason == "no budget limit applies"


def test_a_hard_limit_caps_a_call_at_what_is_left() -> None:
    allowance = pace(status(limit("hard", spent=0.55, reserved=0.05)))
    assert allowance.max_usd == pytest.approx(0.40)
    assert allowance.hard_max_usd == pytest.approx(0.40)
    assert allowance.left_share == pytest.approx(0.40)
    assert not allowance.downgrade
    assert allowance.reason == "run:abc has $0.40 of $1.00 left (hard limit)"


def test_known_steps_share_what_is_left_evenly() -> None:
    allowance = pace(status(limit("hard", spent=0.60)), step_index=2, expected_steps=10)
    assert allowance.max_usd == pytest.approx(0.05)
    assert allowance.hard_max_usd == pytest.approx(0.40)
    assert allowance.downgrade
    assert allowance.reason == "run:abc has $0.40 of $1.00 left for ~8 more steps: $0.05 per step"


def test_past_the_expected_steps_the_last_step_may_take_all_that_is_left() -> None:
    allowance = pace(status(limit("hard", spent=0.70)), step_index=12, expected_steps=10)
    assert allowance.max_usd == pytest.approx(0.30)
    assert "for 1 more step" in allowance.reason


def test_a_downgrade_limit_tightens_as_it_runs_down() -> None:
    full = pace(status(limit("downgrade")))
    half = pace(status(limit("downgrade", spent=0.5)))
    low = pace(status(limit("downgrade", spent=0.9)))
    assert full.max_usd == pytest.approx(1.0)
    assert half.max_usd == pytest.approx(0.25)
    assert low.max_usd == pytest.approx(0.01)
    assert full.downgrade and half.downgrade and low.downgrade
    assert low.hard_max_usd == pytest.approx(0.1)  # a downgrade limit refuses what does not fit at all
    assert half.reason == "run:abc has $0.50 of $1.00 left (50%): up to $0.25 per call"


def test_a_soft_limit_constrains_nothing_without_steps() -> None:
    allowance = pace(status(limit("soft", spent=0.9)))
    assert (allowance.max_usd, allowance.hard_max_usd, allowance.downgrade) == (None, None, False)
    assert allowance.left_share == pytest.approx(0.1)
    assert "only soft limits" in allowance.reason


def test_a_soft_limit_is_paced_when_steps_are_known() -> None:
    allowance = pace(status(limit("soft", spent=0.2)), step_index=0, expected_steps=4)
    assert allowance.max_usd == pytest.approx(0.2)
    assert allowance.hard_max_usd is None


def test_the_tightest_limit_binds_and_is_the_reason() -> None:
    agent = limit("hard", usd=10.0, spent=9.7, key="agent:a")  # $0.30 left
    run = limit("downgrade", usd=1.0, spent=0.0, key="run:abc")  # $1 allowed
    allowance = pace(status(run, agent))
    assert allowance.max_usd == pytest.approx(0.30)
    assert allowance.hard_max_usd == pytest.approx(0.30)
    assert allowance.reason.startswith("agent:a has $0.30 of $10.00 left")
    assert allowance.downgrade  # the run's downgrade limit constrains, even though the agent's binds


def test_token_limits_give_a_token_allowance() -> None:
    tokens_only = limit("hard", usd=None, tokens=10_000, spent_tokens=4_000)
    allowance = pace(status(tokens_only), step_index=0, expected_steps=3)
    assert (allowance.max_usd, allowance.max_tokens, allowance.hard_max_usd) == (None, 2000, None)
    assert allowance.left_share == pytest.approx(0.6)
    assert allowance.reason == "run:abc has 6000 of 10000 tokens left for ~3 more steps: 2000 tokens per step"


def test_an_overspent_or_zero_limit_allows_nothing() -> None:
    over = pace(status(limit("hard", spent=1.5)))
    zero = pace(status(limit("downgrade", usd=0.0)))
    assert (over.max_usd, over.hard_max_usd, over.left_share) == (0.0, 0.0, 0.0)
    assert (zero.max_usd, zero.hard_max_usd, zero.left_share) == (0.0, 0.0, 0.0)


def test_left_share_takes_the_scarcer_of_dollars_and_tokens() -> None:
    both = LimitStatus("b", "run:abc", BudgetMode.HARD, "day", 1.0, 1000, 0.2, 900, 0.0, 0)
    assert both.left_share == pytest.approx(0.1)
    assert both.to_dict()["remaining_tokens"] == 100
    assert status(both).to_dict()["left_share"] == pytest.approx(0.1)
