"""The task router's prior: the learned router's predicted gain of the strong model on a run's opening prompt.

A task router decides once, before the run, from the opening prompt. Given to the escalation as one
more feature, its prediction lets a hand-over at the first step do what the task router does, and
later steps add what the run shows. The router is `gearshift.learning`'s, trained on the agent table's
opening prompts with the two models named by role (`weak`, `strong`), so it transfers across model
pairs; it is embedded in the escalation artifact and computed with NumPy only.

The opening prompt of a live run is every message before the first assistant turn; for a logged task
it is read the same way from the table's `prompt` and the cheap run (a table whose `prompt` holds only
the system message and whose runs start with the user's turn still gives the prior what a live call
will see). Its gain is computed once per distinct opening and remembered (a run asks at
every step), so a step pays for a dictionary look-up, not for hashing the system prompt's n-grams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._messages import Message
from ..evaluation._agent_task_router import opening_prompt, task_opening

if TYPE_CHECKING:
    from ..datasets import AgentRuns, AgentTask
    from ..learning import LearnedRouter

__all__ = ["TaskPrior", "cross_fitted_gains", "opening_prompt", "task_opening", "train_prior"]

_REMEMBERED = 256
"""Openings whose gain a `TaskPrior` keeps: the runs in flight at once, with room to spare."""


class TaskPrior:
    """The predicted gain of the strong model over the cheap one on a run's opening prompt (-1 to 1)."""

    def __init__(self, router: LearnedRouter) -> None:
        if not {"weak", "strong"} <= set(router.models):
            raise ValueError(
                f"a task prior needs a router over 'weak' and 'strong', got {list(router.models)}"
            )
        self.router = router
        self._weak = router.models.index("weak")
        self._strong = router.models.index("strong")
        self._known: dict[tuple[Message, ...], float] = {}

    def __repr__(self) -> str:
        return f"TaskPrior(trained on {self.router.training.rows} tasks)"

    def gains(self, prompts: Sequence[Sequence[Message]]) -> np.ndarray:
        """The gain of each opening prompt."""
        if not prompts:
            return np.zeros(0)
        predicted = self.router.predict([tuple(p) for p in prompts])
        return np.asarray(predicted[:, self._strong] - predicted[:, self._weak], dtype=np.float64)

    def task_gains(self, tasks: Sequence[AgentTask]) -> np.ndarray:
        """The gain of each logged task, from its opening prompt (`task_opening`)."""
        return self.gains([task_opening(task) for task in tasks])

    def gain(self, messages: Sequence[Message]) -> float:
        """The gain of the run whose messages so far are `messages` (read from its opening prompt)."""
        opening = opening_prompt(messages)
        known = self._known.get(opening)
        if known is None:
            known = float(self.gains([opening])[0])
            if len(self._known) >= _REMEMBERED:
                self._known.pop(next(iter(self._known)))
            self._known[opening] = known
        return known


def train_prior(runs: AgentRuns, *, seed: int = 0) -> TaskPrior:
    """A task prior trained on every task of `runs` (needs scikit-learn, like every router training)."""
    from ..evaluation._agent_task_router import role_table
    from ..learning import train_router

    table = role_table(runs, [task_opening(task) for task in runs.tasks])
    return TaskPrior(train_router(table, method="linear", seed=seed))


def cross_fitted_gains(runs: AgentRuns, folds: Sequence[np.ndarray], *, seed: int = 0) -> np.ndarray:
    """Each task's gain from a prior trained on the other folds only (never on the task itself)."""
    gains = np.zeros(len(runs))
    for test in folds:
        held = set(test.tolist())
        kept = [i for i in range(len(runs)) if i not in held]
        prior = train_prior(runs.subset(kept), seed=seed)
        gains[test] = prior.task_gains([runs.tasks[int(i)] for i in test])
    return gains
