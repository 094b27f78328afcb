"""Which features of the default policy's estimate transfer to prompts it never saw: candidates compared.

    uv run python tests/benchmarks/default_candidates.py [--json] [--candidate NAME ...]

Each candidate is a per-model logistic regression of the recorded scores (as `train_router`'s `linear`
method fits it: soft labels, L2 penalty `C`, the dense block standardized and scaled by `dense_scale`
against the unit-norm hashed n-grams), predicting the strong model's gain over the weak one. It is
scored on held-out sets only: each bundled table left out in turn (MT-Bench and the commercial-routers
table as a pair, since they share prompts), and each of MMLU's four subject groups left out of
everything (see default_policy.py). Ranks only matter for APGR, so a prediction is used as is.
`shipped` is the configuration of `learning/default_router.json`; every other candidate changes one
thing. A table's figures move by chance about its coin spread (default_policy.py reports it: 0.165
on the 80-row commercial table, 0.009 on MMLU), so compare candidates on the informative sets.
The last line printed is one JSON object: {CANDIDATE: {SET: APGR, ..., "min", "min_informative",
"mean"}} ("min_informative": the minimum over the sets whose coin spread is under 0.05, i.e. all but
MT-Bench and the commercial table).
Needs scikit-learn and SciPy (the `train` extra); about 2 to 5 minutes per candidate on two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse
from default_policy import MMLU_GROUPS, commercial_routers
from sklearn.linear_model import LogisticRegression

from gearshift.datasets import OutcomeRow, load_routellm
from gearshift.evaluation._metrics import apgr
from gearshift.learning._features import CONTENT_FEATURES, prompt_inputs, signal_vector
from gearshift.learning._prompt_shape import shape_vector
from gearshift.learning._text_hashing import hashed_terms
from gearshift.learning._training import ROUTER_TEXT_DIMS

LENGTH = ("log_prompt_tokens", "log_words", "log_sentences")
ALL = tuple(CONTENT_FEATURES)


@dataclass(frozen=True)
class Candidate:
    """Which features a candidate reads, and how it is regularized."""

    text: bool = True
    dense: tuple[str, ...] = ALL
    strength: float = 0.3
    dense_scale: float = 0.3
    subject_effects: bool = False
    """Fit one offset per training source (table, or MMLU subject) and drop it at prediction: the
    estimate then learns only differences within a source, not which source is harder."""


CANDIDATES = {
    "shipped": Candidate(),
    "stronger-penalty": Candidate(strength=0.1),
    "weaker-penalty": Candidate(strength=1.0),
    "dense-weighted-up": Candidate(dense_scale=1.0),
    "dense-weighted-down": Candidate(dense_scale=0.1),
    "dense-only": Candidate(text=False),
    "text-only": Candidate(dense=()),
    "length-only": Candidate(text=False, dense=LENGTH),
    "text-and-length": Candidate(dense=LENGTH),
    "subject-effects": Candidate(subject_effects=True),
}
SETS = ("gsm8k", "mmlu", "mt-bench", "commercial", *(f"mmlu:{g}" for g in MMLU_GROUPS))
NOISY = {"mt-bench", "commercial"}  # coin spread over 0.05: chance alone moves them that much


class Data:
    """Every bundled row and the commercial table's, with their features, scores and source."""

    def __init__(self) -> None:
        group_of = {subject: group for group, subjects in MMLU_GROUPS.items() for subject in subjects}
        rows: list[OutcomeRow] = []
        source: list[str] = []
        subject: list[str] = []
        for name in ("gsm8k", "mmlu", "mt-bench"):
            for row in load_routellm(name, task_labels="category"):
                rows.append(row)
                topic = row.task.split("/", 1)[-1]
                source.append(f"mmlu:{group_of[topic]}" if name == "mmlu" else name)
                subject.append(row.task)
        for row in commercial_routers():
            rows.append(row)
            source.append("commercial")
            subject.append("commercial")
        self.source, self.subject = np.array(source), np.array(subject)
        self.scores = np.array([[outcome.score for outcome in row.outcomes.values()] for row in rows])
        inputs = prompt_inputs(rows)
        self.dense = np.array(
            [np.concatenate([signal_vector(i.signals), shape_vector(i.text)]) for i in inputs]
        )
        columns, values, starts = [], [], [0]
        for item in inputs:
            cols, vals = hashed_terms(item.text, ROUTER_TEXT_DIMS)
            columns.append(cols)
            values.append(vals)
            starts.append(starts[-1] + cols.size)
        self.text = sparse.csr_matrix(
            (np.concatenate(values).astype(np.float64), np.concatenate(columns), np.array(starts)),
            shape=(len(rows), ROUTER_TEXT_DIMS),
        )

    def held_out(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, scored rows) of one held-out set; the commercial table never trains."""
        if name == "mmlu":
            left_out = [f"mmlu:{g}" for g in MMLU_GROUPS]
        elif name in ("mt-bench", "commercial"):
            left_out = ["mt-bench"]
        else:
            left_out = [name]
        train = np.flatnonzero(~np.isin(self.source, [*left_out, "commercial"]))
        scored = np.flatnonzero(np.isin(self.source, left_out if name != "commercial" else ["commercial"]))
        return train, scored


def _design(data: Data, c: Candidate, train: np.ndarray, scored: np.ndarray) -> tuple[Any, Any]:
    blocks = [data.text] if c.text else []
    if c.dense:
        dense = data.dense[:, [CONTENT_FEATURES.index(name) for name in c.dense]]
        mean, std = dense[train].mean(axis=0), dense[train].std(axis=0)
        blocks.append(sparse.csr_matrix((dense - mean) / np.where(std > 1e-12, std, 1.0) * c.dense_scale))
    x = sparse.hstack(blocks, format="csr")
    fit, score = x[train], x[scored]
    if c.subject_effects:
        levels = data.subject[train]
        names = np.unique(levels)
        onehot = (levels[:, None] == names[None, :]).astype(np.float64)
        fit = sparse.hstack([fit, sparse.csr_matrix(onehot - onehot.mean(axis=0))], format="csr")
        score = sparse.hstack([score, sparse.csr_matrix((len(scored), names.size))], format="csr")
    return fit, score


def _gain(c: Candidate, fit: Any, scores: np.ndarray, score: Any) -> np.ndarray:
    quality = []
    for model in range(scores.shape[1]):
        y = scores[:, model]
        x = sparse.vstack([fit, fit], format="csr")
        labels = np.concatenate([np.ones(y.size), np.zeros(y.size)])
        weights = np.concatenate([y, 1 - y])
        keep = weights > 0
        regression = LogisticRegression(C=c.strength, max_iter=500, tol=1e-4)
        regression.fit(x[keep], labels[keep], sample_weight=weights[keep])
        quality.append(regression.predict_proba(score)[:, 1])
    return np.asarray(quality[-1] - quality[0])


def apgr_of(gain: np.ndarray, scores: np.ndarray) -> float:
    """APGR of sending the rows with the largest `gain` to the strong (last) model first."""
    weak, strong = scores[:, 0], scores[:, -1]
    order = np.argsort(-gain, kind="stable")
    quality = (weak.sum() + np.concatenate(([0.0], np.cumsum((strong - weak)[order])))) / gain.size
    shares = np.arange(gain.size + 1) / gain.size
    value = apgr(shares, quality, weak_quality=float(weak.mean()), strong_quality=float(strong.mean()))
    return float("nan") if value is None else value


def evaluate(data: Data, c: Candidate) -> dict[str, float]:
    """The candidate's APGR on every held-out set, then its minimum, informative minimum and mean."""
    figures = {}
    for name in SETS:
        train, scored = data.held_out(name)
        fit, score = _design(data, c, train, scored)
        figures[name] = round(apgr_of(_gain(c, fit, data.scores[train], score), data.scores[scored]), 4)
    values = list(figures.values())
    informative = [v for k, v in figures.items() if k not in NOISY]
    return {
        **figures,
        "min": min(values),
        "min_informative": min(informative),
        "mean": round(statistics.fmean(values), 4),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidate", action="append", choices=sorted(CANDIDATES))
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    data = Data()
    results = {}
    for name in args.candidate or CANDIDATES:
        results[name] = evaluate(data, CANDIDATES[name])
        if not args.json:
            print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
