"""Learned routers under evaluation: trained per fold (or on a training table), predicting held-out rows.

`run_learned` trains `gearshift.learning.train_router` with one method, collects its predicted quality
for every row of the evaluated table from a router that never saw that row, and sweeps the tradeoff
over those predictions (`sweep_tradeoff`). `LearnedRouter.choose` picks, per row, the model with the
best `predicted - tradeoff * relative cost` (ties to the cheaper model), so with the routers' relative
costs as penalties the sweep holds every choice `choose` makes at any tradeoff, all of them at once.
The operating point is what a config without a target runs at: each fold's own router at the
operating point it was trained with (`router.operating_point`), through `choose` itself.
`run_saved` scores a router saved by `gearshift train` the same way, as it was shipped: no training,
its own predictions and relative costs swept, its own operating point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..datasets import OutcomeRow, OutcomeTable
from ._metrics import RouterCurve
from ._names import LEARNED_METHODS
from ._sweep import EvaluationError, OutcomeMatrix, sweep_tradeoff

if TYPE_CHECKING:
    from ..learning import LearnedRouter

__all__ = ["LearnedRun", "run_learned", "run_saved"]


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
        held_out = _held_out(router, matrix, held.rows, f"the {name} router")
        predicted[where], operating[where] = held_out.predicted, held_out.operating
        penalties.append(held_out.penalties)
        held_rows = held.rows
        if on_fold is not None:
            on_fold()
    assert router is not None
    # One knob for the whole table: the folds' routers priced the models alike (the same table's costs).
    curve = sweep_tradeoff(matrix, name, predicted, np.mean(penalties, axis=0), operating=None)
    return LearnedRun(curve, operating, _decision(router), held_rows)


def run_saved(name: str, router: LearnedRouter, table: OutcomeTable, matrix: OutcomeMatrix) -> LearnedRun:
    """A saved router scored as shipped: its predictions on every row of `table`, no training.

    Its curve sweeps the trade-off over its own predictions and relative costs; its operating point is
    the one it was saved with. Refused, naming `name` (the router's file) and the models on each side,
    when its models are not the table's evaluated ones: it would route to a model the table has no
    outcome for, or could never choose one the table's baselines use.
    """
    if set(router.models) != set(matrix.models):
        unknown = [m for m in matrix.models if m not in router.models]
        absent = [m for m in router.models if m not in matrix.models]
        differences = [
            *([f"it does not know the table's {_models(unknown)}"] if unknown else []),
            *([f"the table has no outcome on every row for its {_models(absent)}"] if absent else []),
        ]
        raise EvaluationError(
            f"router {name}: routes between {', '.join(router.models)}, and the table is evaluated on "
            f"{', '.join(matrix.models)}: {'; '.join(differences)}; score it on a table of its models"
        )
    held_out = _held_out(router, matrix, table.rows, f"router {name}")
    curve = sweep_tradeoff(matrix, name, held_out.predicted, held_out.penalties, operating=None)
    return LearnedRun(curve, held_out.operating, _decision(router), table.rows)


def _models(names: Sequence[str]) -> str:
    return f"model {names[0]}" if len(names) == 1 else f"models {', '.join(names)}"


class _HeldOut(NamedTuple):
    """One router on some rows, in the matrix's model order: predictions, cost penalties, choices."""

    predicted: NDArray[np.float64]
    penalties: NDArray[np.float64]
    operating: NDArray[np.intp]


def _held_out(router: LearnedRouter, matrix: OutcomeMatrix, rows: Sequence[OutcomeRow], who: str) -> _HeldOut:
    """`router`'s predictions and operating-point choices on `rows`, as the matrix's model indices."""
    columns = _columns(router, matrix)
    scores = np.asarray(router.predict(rows), dtype=np.float64)
    chosen = np.asarray(router.choose(scores, tradeoff=router.operating_point.tradeoff), dtype=np.intp)
    to_matrix = np.full(len(router.models), -1, dtype=np.intp)  # router index -> matrix index
    to_matrix[columns] = np.arange(len(columns))
    if np.any(to_matrix[chosen] < 0):
        raise EvaluationError(f"{who} chose a model the evaluated table does not have")
    penalties = np.asarray(router.relative_costs, dtype=np.float64)[columns]
    return _HeldOut(scores[:, columns], penalties, to_matrix[chosen])


def _decision(router: LearnedRouter) -> Callable[[OutcomeRow], object]:
    """One row routed by `router` at its operating point, as a live decision would (for timing)."""
    tradeoff = router.operating_point.tradeoff

    def decide(row: OutcomeRow) -> object:
        return router.choose(router.predict([row]), tradeoff=tradeoff)

    return decide
