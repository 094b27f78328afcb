"""How the default policy's difficulty estimate is trained: on every bundled outcome table, reproducibly.

The shipped artifact (`gearshift/learning/default_router.json`) is the output of
`train_default_router()` saved with `save_default_router`; `packages/core/scripts/train_default_router.py`
writes it, and writing it again gives the same bytes: fixed seed, rows sorted by id, one task label
for every row (users' requests carry none, so the estimate must not lean on one), the fixed `linear`
method, and no training time in the file. The estimate reads the size of the user's own text, not the
whole conversation's (`UNUSED_FEATURES`): the bundled prompts are single user turns, so what they teach
about size is the size of a request, and an agent's system prompt, tool results and earlier turns would
otherwise read as difficulty. `exclude` leaves tables out, so that an evaluation on a
bundled table scores a router that never saw it (leave-one-dataset-out).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from ..datasets import ROUTELLM_DATASETS, OutcomeRow, OutcomeTable, load_routellm
from ._router_model import LearnedRouter

__all__ = [
    "DEFAULT_TRAINING_TASK",
    "NUMBER_FEATURES",
    "UNUSED_FEATURES",
    "default_training_table",
    "save_default_router",
    "train_default_router",
]

DEFAULT_TRAINING_TASK = "general"
"""The one task label every training row gets."""

_SEED = 0

NUMBER_FEATURES = (
    "log_numbers",
    "log_number_digits",
    "log_longest_number",
    "has_percent",
    "has_money",
    "has_decimal",
)
"""The shape features that count numbers, money, percentages and decimals: their direction flips from one
training source to the next (more numbers go with a larger gain from the strong model on MMLU humanities
and a smaller one on STEM)."""

UNUSED_FEATURES = ("log_prompt_tokens", "log_turns", *NUMBER_FEATURES)
"""Content features the default estimate does not read (their weights are zero): the conversation's size
and the `NUMBER_FEATURES`.

Chosen by the second round's rule in `tests/benchmarks/default_candidates.py` (candidate
`user-size-no-numbers`)."""


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

    table = default_training_table(exclude)
    router = train_router(table, method="linear", seed=_SEED, unused_features=UNUSED_FEATURES)
    # Training time differs run to run; the file must not.
    return replace(router, training=replace(router.training, seconds=0.0))


def save_default_router(router: LearnedRouter, path: str | os.PathLike[str]) -> int:
    """Write `router` to `path`; returns the file's size in bytes."""
    router.save(path)
    return os.path.getsize(path)
