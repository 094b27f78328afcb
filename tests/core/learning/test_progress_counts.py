"""Long work counts itself for the progress bars: every unit reported once, ending at its total."""

from __future__ import annotations

import pytest
from learning_tables import two_model_table

from gearshift.datasets import load_routellm, load_tau_retail
from gearshift.evaluation import evaluate
from gearshift.evaluation._agent_eval import evaluate_agents
from gearshift.learning import train_router


def _assert_counts_to_total(calls: list[tuple[int, int]]) -> None:
    assert calls, "no progress was reported"
    totals = {total for _, total in calls}
    assert len(totals) == 1  # the total is known from the start
    assert [done for done, _ in calls] == list(range(1, totals.pop() + 1))


@pytest.mark.parametrize(("method", "folds", "fits"), [("auto", 3, None), ("linear", 2, None), ("knn", 3, 2)])
def test_training_counts_every_fit(method: str, folds: int, fits: int | None) -> None:
    calls: list[tuple[int, int]] = []
    train_router(
        two_model_table(120, seed=3), method=method, folds=folds, on_progress=lambda *c: calls.append(c)
    )
    _assert_counts_to_total(calls)
    if fits is not None:
        assert calls[-1][1] == fits  # knn: one out-of-fold pass, then the final fit


def test_evaluation_counts_baselines_policies_and_folds() -> None:
    calls: list[tuple[int, int]] = []
    evaluate(
        load_routellm("mt-bench"),
        policies=("scorer", "linear"),
        folds=3,
        on_progress=lambda *c: calls.append(c),
    )
    _assert_counts_to_total(calls)
    assert calls[-1][1] == 1 + 1 + 3  # the baselines, the scorer, three folds of the linear router


def test_the_agent_replay_counts_its_stages() -> None:
    calls: list[tuple[int, int]] = []
    evaluate_agents(
        load_tau_retail(),
        policies=("scorer-steps",),
        folds=2,
        with_task_router=False,
        on_progress=lambda *c: calls.append(c),
    )
    _assert_counts_to_total(calls)
    assert calls[-1][1] == 2  # the baselines and the step scorer
