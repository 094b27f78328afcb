"""How the default policy's difficulty estimate is trained: on every bundled outcome table, reproducibly.

The shipped artifact (`gearshift/learning/default_router.json`) is the output of
`train_default_router()` saved with `save_default_router`; `packages/core/scripts/train_default_router.py`
writes it, and writing it again gives the same bytes: fixed seed, rows sorted by id, one task label
for every row (users' requests carry none, so the estimate must not lean on one), the fixed `linear`
method, and no training time in the file. `exclude` leaves tables out, so that an evaluation on a
bundled table scores a router that never saw it (leave-one-dataset-out).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from ..datasets import ROUTELLM_DATASETS, OutcomeRow, OutcomeTable, load_routellm
from ._router_model import LearnedRouter

__all__ = ["DEFAULT_TRAINING_TASK", "default_training_table", "save_default_router", "train_default_router"]

DEFAULT_TRAINING_TASK = "general"
"""The one task label every training row gets."""

_SEED = 0


def default_training_table(exclude: Iterable[str] = ()) -> OutcomeTable:
    """The bundled RouteLLM tables but what `exclude` names, as one table sorted by row id, one task label.

    `exclude` names whole tables (`mmlu`) or categories of one (`mmlu/abstract_algebra`, `mt-bench/writing`:
    the labels `load_routellm(..., task_labels="category")` gives), so an evaluation can hold out a topic.
    """
    left_out = set(exclude)
    categories: dict[str, set[str]] = {}
    for name in ROUTELLM_DATASETS:
        if any(item.startswith(f"{name}/") for item in left_out):
            categories[name] = {row.task for row in load_routellm(name, task_labels="category")}
    known = set(ROUTELLM_DATASETS).union(*categories.values())
    unknown = sorted(left_out - known)
    if unknown:
        raise ValueError(
            f"no bundled table or category named {unknown[0]!r}; choose from {', '.join(ROUTELLM_DATASETS)} "
            "or one of their categories (e.g. 'mmlu/anatomy')"
        )
    rows = [
        OutcomeRow(row.id, DEFAULT_TRAINING_TASK, row.prompt, row.outcomes)
        for name in ROUTELLM_DATASETS
        if name not in left_out
        for row in load_routellm(name, task_labels="category" if name in categories else "dataset")
        if row.task not in left_out
    ]
    if not rows:
        raise ValueError("every bundled table was excluded: nothing left to train on")
    return OutcomeTable(sorted(rows, key=lambda row: row.id))


def train_default_router(exclude: Iterable[str] = ()) -> LearnedRouter:
    """The default policy's router, trained on the bundled tables but `exclude`; needs scikit-learn."""
    from ._training import train_router

    router = train_router(default_training_table(exclude), method="linear", seed=_SEED)
    # Training time differs run to run; the file must not.
    return replace(router, training=replace(router.training, seconds=0.0))


def save_default_router(router: LearnedRouter, path: str | os.PathLike[str]) -> int:
    """Write `router` to `path`; returns the file's size in bytes."""
    router.save(path)
    return os.path.getsize(path)
