"""Latent topics: a linear router that reads a prompt's text through a few directions learned from
every prompt seen, with or without outcomes.

A shadow log labels a few hundred calls, but it logs the prompts of every call. A logistic regression
over 8,192 hashed n-gram columns, fitted on a few hundred labels, spreads its weight over n-grams that
were seen once or twice. `topic_projection` finds the `k` directions along which the prompts themselves
vary most (a truncated SVD of the idf-weighted hashed text of the table's prompts and of the unlabeled
ones); the router's text weights are then confined to those directions, a handful of numbers to fit
instead of thousands. The projection is linear, so the fitted weights fold back onto the hashed
columns (`unfold`): the result is an ordinary `LinearPredictor`, with the same artifact and the same
cost per decision as any linear router.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._messages import Message
from ..datasets import OutcomeRow
from ._features import FeatureSpec, LoggedPrompt, PromptFeatures, PromptLike, messages_text
from ._fitting import Design
from ._text_hashing import hashed_terms

__all__ = [
    "MAX_TOPIC_PROMPTS",
    "TOPIC_COUNTS",
    "TOPIC_STRENGTH",
    "TopicDesign",
    "table_text",
    "topic_projection",
    "unfold",
    "unlabeled_text",
]

TOPIC_COUNTS = (8, 16)
"""Numbers of topics internal cross-validation compares. On 5% samples of the bundled GSM8K and MMLU
rows (383 labels), 8 and 16 topics ranked held-out prompts better than the full hashed block, 32 did
not (`tests/benchmarks/shadow_replay.py`)."""

TOPIC_STRENGTH = 0.1
"""Inverse L2 strength (scikit-learn's C) of a topic model's logistic regressions."""

MAX_TOPIC_PROMPTS = 20_000
"""At most this many unlabeled prompts are read to find the topics (evenly spaced over those given)."""

_MIN_ROWS_PER_TOPIC = 2


def unlabeled_text(prompts: Sequence[PromptLike], dims: int) -> Any:
    """The hashed text block (SciPy CSR, `dims` columns) of at most `MAX_TOPIC_PROMPTS` of `prompts`."""
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

    step = max(1, -(-len(prompts) // MAX_TOPIC_PROMPTS))
    indptr, indices, values = [0], [], []
    for prompt in prompts[::step]:
        cols, vals = hashed_terms(_text(prompt), dims)
        indices.append(cols)
        values.append(vals)
        indptr.append(indptr[-1] + cols.size)
    return sparse.csr_matrix(
        (
            np.concatenate(values).astype(np.float64) if values else np.zeros(0),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.intp),
            np.asarray(indptr),
        ),
        shape=(len(indptr) - 1, dims),
    )


def _text(prompt: PromptLike) -> str:
    """The text a router reads of `prompt` (`prompt_input(prompt).text`, without its signals)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, OutcomeRow):
        return prompt.prompt_text
    if isinstance(prompt, LoggedPrompt):
        return _text(prompt.prompt)
    messages = tuple(prompt)
    if not all(isinstance(m, Message) for m in messages):
        raise TypeError(
            "an unlabeled prompt must be a string, an OutcomeRow, a LoggedPrompt, or a sequence of "
            "Message values"
        )
    return messages_text(messages)


def table_text(spec: FeatureSpec, features: PromptFeatures) -> Any:
    """The hashed text block of a table's features as a SciPy CSR matrix."""
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

    return sparse.csr_matrix(
        (features.values.astype(np.float64), features.indices, features.indptr),
        shape=(features.rows, spec.text_dims),
    )


def topic_projection(corpus: Any, topics: int, seed: int) -> np.ndarray | None:
    """The (columns, `topics`) map from hashed text to topic scores, learned from `corpus` (CSR, one
    prompt per row, labeled and unlabeled alike); None when the corpus is too small for that many.

    Columns are weighted by their smoothed inverse document frequency before the SVD, so n-grams that
    every prompt shares (a template's wording) do not make up the topics; the weighting is folded into
    the map.
    """
    import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]
    from sklearn.decomposition import TruncatedSVD  # type: ignore[import-untyped,unused-ignore]

    if corpus.shape[0] < _MIN_ROWS_PER_TOPIC * topics or corpus.shape[1] <= topics:
        return None
    documents = np.asarray((corpus != 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + corpus.shape[0]) / (1.0 + documents)) + 1.0
    weighted = corpus @ sparse.diags(idf)
    svd = TruncatedSVD(n_components=topics, algorithm="randomized", random_state=seed).fit(weighted)
    return np.asarray(idf[:, None] * svd.components_.T)


class TopicDesign:
    """A design matrix [topic scores, standardized | the dense block of `design`], and how to fold
    weights fitted on it back onto the hashed columns."""

    def __init__(self, design: Design, text: Any, projection: np.ndarray) -> None:
        import scipy.sparse as sparse  # type: ignore[import-untyped,unused-ignore]

        scores = np.asarray(text @ projection)
        spread = scores.std(axis=0)
        # Standardized like the dense block, so one L2 strength treats both alike.
        self.projection = projection / np.where(spread > 1e-12, spread, 1.0)
        self.topics = projection.shape[1]
        text_dims = text.shape[1]
        self.design = Design(
            sparse.hstack(
                [sparse.csr_matrix(np.asarray(text @ self.projection)), design.x[:, text_dims:]],
                format="csr",
            ),
            design.mean,
            design.scale,
            design.task_fill,
        )

    def unfold(self, weights: np.ndarray) -> np.ndarray:
        """Weights over [hashed text | dense] equal to `weights` over [topics | dense]."""
        return unfold(self.projection, weights)


def unfold(projection: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weights (topics + dense, models) as weights (hashed columns + dense, models): the text part is
    `projection @ topic weights`, so `text @ result == topic scores @ weights` for every prompt."""
    topics = projection.shape[1]
    return np.vstack([projection @ weights[:topics], weights[topics:]])
