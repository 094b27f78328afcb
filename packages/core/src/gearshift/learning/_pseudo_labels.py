"""Pseudo-labels: a small table's final linear fit also learns from prompts without outcomes, each one
labeled by its nearest labeled prompts.

A shadow log judges a few percent of the calls but logs the prompt of every call. Nearest neighbours
over a few hundred pairs route poorly on their own, but as labels for the log's other prompts they
spread each pair's outcome over the prompts that resemble it: the logistic regression fitted on the
pairs and on those soft labels (together weighted `PSEUDO_WEIGHT` times the pairs) is smoother where
the pairs are few. The result is a linear router like any other: same artifact, same cost per decision.

Off unless asked (`train_router(..., pseudo_weight=PSEUDO_WEIGHT)`). The router's calibration curve
is swept over out-of-fold fits without the pseudo-labels, and a final fit with them spreads its
predictions otherwise: `train_router` moves the curve's trade-offs to the final fit's own scale
(`on_scale_of`), each share at the trade-off that sends it over the table's and these prompts, the
traffic it will route (as it does for every fit given the log's prompts). A logged prompt
(`LoggedPrompt`) is read with the task label its call was routed with, as the router reads the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._features import FeatureSpec, PromptLike, build_features, prompt_inputs
from ._fitting import KNN_DIMS, Design, FitData, fit_knn
from ._predictors import dense_inputs, knn_keys
from ._topics import table_text

__all__ = ["MAX_PSEUDO_PROMPTS", "PSEUDO_NEIGHBOURS", "PSEUDO_WEIGHT", "PseudoRows", "pseudo_rows", "sampled"]

PSEUDO_WEIGHT = 3.0
"""How much the pseudo-labeled prompts count together, in multiples of the table's own rows."""

MAX_PSEUDO_PROMPTS = 2_000
"""At most this many unlabeled prompts are pseudo-labeled (evenly spaced over those given)."""

PSEUDO_NEIGHBOURS = 25
"""How many labeled prompts label each unlabeled one (similarity-weighted, shrunk toward the mean by a
quarter as many)."""


@dataclass(frozen=True, eq=False)
class PseudoRows:
    """Unlabeled prompts in a table's design: `x` their rows, `text` their hashed text, `labels` each
    one's models' scores as its neighbours predict them, and `weight` how much each row counts."""

    x: Any
    text: Any
    labels: np.ndarray
    weight: float

    def extend(
        self, design: Design, text: Any, scores: np.ndarray
    ) -> tuple[Design, Any, np.ndarray, np.ndarray]:
        """`design`, the table's `text` and `scores` with these rows below the table's, and every row's
        weight (1 for the table's)."""
        import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

        rows = design.x.shape[0]
        extended = Design(
            sparse.vstack([design.x, self.x], format="csr"), design.mean, design.scale, design.task_fill
        )
        weights = np.concatenate([np.ones(rows), np.full(self.labels.shape[0], self.weight)])
        return (
            extended,
            sparse.vstack([text, self.text], format="csr"),
            np.vstack([scores, self.labels]),
            weights,
        )


def sampled(prompts: Sequence[PromptLike]) -> Sequence[PromptLike]:
    """At most `MAX_PSEUDO_PROMPTS` of `prompts`, evenly spaced through them."""
    return prompts[:: max(1, -(-len(prompts) // MAX_PSEUDO_PROMPTS))]


def pseudo_rows(
    data: FitData, design: Design, unlabeled: Sequence[PromptLike], weight: float = PSEUDO_WEIGHT
) -> PseudoRows | None:
    """At most `MAX_PSEUDO_PROMPTS` of `unlabeled`, labeled by their `PSEUDO_NEIGHBOURS` nearest rows of
    `data` and together weighted `weight` x the table's rows; None without prompts or hashed text."""
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

    spec: FeatureSpec = data.spec
    if not unlabeled or not spec.text_dims or weight <= 0:
        return None
    features = build_features(spec, prompt_inputs(sampled(unlabeled)))
    text = table_text(spec, features)
    dense = (dense_inputs(spec, features, design.task_fill) - design.mean) * design.scale
    x = sparse.hstack([text, sparse.csr_matrix(dense)], format="csr")
    neighbours = fit_knn(data, PSEUDO_NEIGHBOURS, PSEUDO_NEIGHBOURS / 4)
    labels = neighbours.predict_keys(knn_keys(spec, features, KNN_DIMS))
    share = weight * data.features.rows / features.rows
    return PseudoRows(x, text, np.asarray(labels, dtype=np.float64), share)
