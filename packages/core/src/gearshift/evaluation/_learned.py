"""Learned routers under evaluation: trained per fold (or on a training table), predicting held-out rows.

`run_learned` trains `gearshift.learning.train_router` with one method, collects its predicted quality
for every row of the evaluated table from a router that never saw that row, and sweeps the tradeoff
over those predictions (`sweep_tradeoff`). `LearnedRouter.choose` picks, per row, the model with the
best `predicted - tradeoff * relative cost` (ties to the cheaper model), so with the routers' relative
costs as penalties the sweep holds every choice `choose` makes at any tradeoff, all of them at once.
The operating point is what a config without a target runs at: each fold's own router at the
operating point it was trained with (`router.operating_point`), through `choose` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..datasets import OutcomeRow, OutcomeTable
from ._metrics import RouterCurve
from ._names import LEARNED_METHODS
from ._sweep import EvaluationError, OutcomeMatrix, sweep_tradeoff

if TYPE_CHECKING:
    from ..learning import LearnedRouter

__all__ = ["LearnedRun", "run_learned"]


@dataclass(frozen=True, eq=False)
class LearnedRun:
    """A learned policy's out-of-sample curve, its operating-point choices and a decision to time.

    `operating_choices[i]` is the matrix model index row i is routed to at the operating point;
    `decide` routes one row with the last trained router, and `sample_rows` are rows to time it on.
    """

    curve: RouterCurve
    operating_choices: NDArray[np.intp]
    decide: Callable[[OutcomeRow], object]
    sample_rows: Sequence[OutcomeRow]


def _columns(router: LearnedRouter, matrix: OutcomeMatrix) -> list[int]:
    """Where each of the matrix's models sits among the router's models."""
    known = list(router.models)
    missing = [m for m in matrix.models if m not in known]
    if missing:
        raise EvaluationError(
            f"the trained router does not know model {missing[0]!r} of the evaluated table "
            f"(it routes between {', '.join(known)}); train on a table with the same models"
        )
    return [known.index(m) for m in matrix.models]


def _splits(
    table: OutcomeTable, train: OutcomeTable | None, folds: int, seed: int
) -> list[tuple[OutcomeTable, OutcomeTable, NDArray[np.intp]]]:
    if train is not None:
        return [(train, table, np.arange(len(table), dtype=np.intp))]
    position = {row.id: i for i, row in enumerate(table)}
    return [
        (fit, held, np.array([position[row.id] for row in held], dtype=np.intp))
        for fit, held in table.kfold(folds, seed=seed)
    ]


def run_learned(
    name: str,
    table: OutcomeTable,
    matrix: OutcomeMatrix,
    *,
    train: OutcomeTable | None,
    folds: int,
    seed: int,
    on_fold: Callable[[], None] | None = None,
) -> LearnedRun:
    """Train the `name` policy's router per split and sweep its out-of-sample predictions.

    Needs `gearshift[train]` for methods that use scikit-learn; a missing extra is reported by
    `train_router` with the install command. `on_fold()` is called after each split's router.
    """
    from ..learning import train_router
    from ..learning._training import MIN_TRAINING_ROWS

    # The smallest training split is the table less its largest fold.
    fewest = len(table) - -(-len(table) // folds)
    if train is None and fewest < MIN_TRAINING_ROWS:
        raise EvaluationError(
            f"{name} is cross-validated: with {folds} folds a router trains on as few as {fewest} of the "
            f"table's {len(table)} rows, and training needs at least {MIN_TRAINING_ROWS} rows; give a "
            "larger table, fewer --folds, or a training table (--train)"
        )
    method = LEARNED_METHODS[name]
    predicted = np.empty_like(matrix.scores)
    operating = np.empty(matrix.rows, dtype=np.intp)
    penalties = []
    router = None
    held_rows: Sequence[OutcomeRow] = ()
    for fit, held, where in _splits(table, train, folds, seed):
        router = train_router(fit, method=method, seed=seed)
        columns = _columns(router, matrix)
        scores = np.asarray(router.predict(held.rows), dtype=np.float64)
        predicted[where] = scores[:, columns]
        penalties.append(np.asarray(router.relative_costs, dtype=np.float64)[columns])
        chosen = np.asarray(router.choose(scores, tradeoff=router.operating_point.tradeoff), dtype=np.intp)
        to_matrix = np.full(len(router.models), -1, dtype=np.intp)  # router index -> matrix index
        to_matrix[columns] = np.arange(len(columns))
        if np.any(to_matrix[chosen] < 0):
            raise EvaluationError(f"the {name} router chose a model the evaluated table does not have")
        operating[where] = to_matrix[chosen]
        held_rows = held.rows
        if on_fold is not None:
            on_fold()
    assert router is not None
    # One knob for the whole table: the folds' routers priced the models alike (the same table's costs).
    curve = sweep_tradeoff(matrix, name, predicted, np.mean(penalties, axis=0), operating=None)
    last, tradeoff = router, router.operating_point.tradeoff

    def decide(row: OutcomeRow) -> object:
        return last.choose(last.predict([row]), tradeoff=tradeoff)

    return LearnedRun(curve, operating, decide, held_rows)
