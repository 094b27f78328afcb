"""The task router over agent runs: one model per task, chosen from the opening prompt, cross-fitted.

The learned router of `gearshift.learning` is trained on a single-turn table made from the agent
table (each task's opening prompt; each model's task success and whole-run cost), with the two models
named by role (`weak`, `strong`) so a router trained on one model pair can route another. Each task is
routed by a router that never saw it: trained on the other folds, or on a separate training table.
The operating decision is the shipped `LearnedPolicy`'s, asked about the opening prompt's `RouteInput`;
the curve sweeps the threshold on the router's predicted gain of the strong model over the cheap one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._messages import Message
from ..datasets import AgentRuns, AgentTask, Outcome, OutcomeRow, OutcomeTable
from ._agent_replay import StepPrefixes

if TYPE_CHECKING:
    from ..learning import LearnedRouter

__all__ = [
    "TaskRouterFit",
    "cross_fit_task_router",
    "opening_prompt",
    "role_table",
    "shared_prompts",
    "task_folds",
    "task_groups",
    "task_opening",
]

ROLES = ("weak", "strong")


def role_table(runs: AgentRuns, prompts: Sequence[Sequence[Message]] | None = None) -> OutcomeTable:
    """A single-turn outcome table of the tasks' opening prompts (or of `prompts`, one per task), the
    models named `weak` and `strong`."""
    return OutcomeTable(
        OutcomeRow(
            task.id,
            row.task,
            task.prompt if prompts is None else tuple(prompts[index]),
            {
                "weak": Outcome(task.weak.score, cost_usd=task.weak.cost_usd),
                "strong": Outcome(task.strong.score, cost_usd=task.strong.cost_usd),
            },
        )
        for index, (task, row) in enumerate(zip(runs.tasks, runs.table, strict=True))
    )


@dataclass(frozen=True, slots=True)
class TaskRouterFit:
    """Per task: whether the router sends it to the strong model, its predicted gain, and the tasks its
    router was trained on (none of which is the task itself)."""

    strong: tuple[bool, ...]
    gains: np.ndarray
    trained_on: tuple[frozenset[str], ...]
    routers: tuple[LearnedRouter, ...] = ()
    """The router of each split, in the order of the folds (one when trained on a separate table)."""


def opening_prompt(messages: Sequence[Message]) -> tuple[Message, ...]:
    """The messages before the first assistant turn: the prompt a run opened with."""
    for index, message in enumerate(messages):
        if message.role == "assistant":
            return tuple(messages[:index])
    return tuple(messages)


def task_opening(task: AgentTask) -> tuple[Message, ...]:
    """A logged task's opening prompt as a live call of its cheap run sees it: the table's `prompt` and
    any user turns its cheap run starts with (a table may keep only the system message as `prompt`)."""
    return opening_prompt((*task.prompt, *task.weak.run.chat))


def task_groups(runs: AgentRuns) -> np.ndarray:
    """Per task, the index of its group: tasks with the same opening prompt (repeated trials) share one."""
    seen: dict[tuple[Message, ...], int] = {}
    return np.array([seen.setdefault(task_opening(task), len(seen)) for task in runs.tasks], dtype=np.int64)


def task_folds(runs: AgentRuns, folds: int, seed: int) -> list[np.ndarray]:
    """The test tasks of each fold (split by task, seeded); every task is in exactly one.

    Tasks with the same opening prompt (several trials of one task) always fall in the same fold, so
    no task is routed by a model that saw another trial of it. When the table has fewer distinct
    opening prompts than `folds` (an agent whose runs all open alike), the folds split rows instead:
    `shared_prompts` says when, for the report to state it.
    """
    groups = task_groups(runs)
    distinct = int(groups.max()) + 1 if len(groups) else 0
    if folds < 2 or folds > len(runs):
        raise ValueError(f"cross-fitting needs 2 <= folds <= {len(runs)} tasks, got {folds}")
    if folds > distinct:
        groups, distinct = np.arange(len(runs)), len(runs)
    order = np.random.default_rng(seed).permutation(distinct)
    return [np.flatnonzero(np.isin(groups, order[fold::folds])) for fold in range(folds)]


def shared_prompts(runs: AgentRuns, folds: int) -> str | None:
    """The note to report when `task_folds` had to split rows sharing an opening prompt, else None."""
    distinct = len(set(task_groups(runs).tolist()))
    if distinct >= folds or distinct == len(runs):
        return None
    return (
        f"only {distinct} distinct opening prompts among {len(runs)} tasks, fewer than the {folds} folds: "
        "folds split rows, so rows sharing an opening prompt (repeated trials?) may fall in different folds"
    )


def cross_fit_task_router(
    runs: AgentRuns,
    prefixes: StepPrefixes,
    *,
    folds: Sequence[np.ndarray] | None = None,
    train: AgentRuns | None = None,
    seed: int = 0,
) -> TaskRouterFit:
    """Route each task of `runs` with a learned router that never saw it (see the module docstring)."""
    from ..learning import LearnedPolicy, train_router

    n = len(runs)
    table = role_table(runs)
    splits: list[tuple[OutcomeTable, frozenset[str], np.ndarray]] = []
    if train is not None:
        training = role_table(train)
        splits.append((training, frozenset(r.id for r in training), np.arange(n)))
    else:
        for test in folds if folds is not None else task_folds(runs, 5, seed):
            held = set(test.tolist())
            kept = [i for i in range(n) if i not in held]
            splits.append((table.subset(kept), frozenset(table[i].id for i in kept), test))
    strong = [False] * n
    gains = np.zeros(n)
    trained_on: list[frozenset[str]] = [frozenset()] * n
    mapping = {"weak": runs.weak, "strong": runs.strong}
    routers = []
    for training, ids, test in splits:
        router = train_router(training, method="linear", seed=seed)
        routers.append(router)
        policy = LearnedPolicy(router, model_map=mapping, registry=prefixes.registry)
        weak_at, strong_at = router.models.index("weak"), router.models.index("strong")
        predicted = router.predict([table[int(i)].prompt for i in test])
        for row, i in enumerate(test.tolist()):
            strong[i] = policy.decide(prefixes.openings[i]).tier > prefixes.openings[i].candidates[0].tier
            gains[i] = predicted[row, strong_at] - predicted[row, weak_at]
            trained_on[i] = ids
    return TaskRouterFit(tuple(strong), gains, tuple(trained_on), tuple(routers))
