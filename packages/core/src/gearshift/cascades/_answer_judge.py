"""The learned answer judge: predicts from a prompt and an answer whether the answer is good.

As FrugalGPT does, it learns from recorded answers: an outcome table whose rows carry each model's
`response` and `score` gives (prompt, answer, good?) examples, where good means `score >=
label_threshold`. The features are `answer_features` (hashed n-grams of prompt and answer plus the
answer's shape); the model is a logistic regression. Training fits it with scikit-learn (the
`gearshift[train]` extra, imported only by `train`); predicting is one dot product in NumPy.

A judge is saved as a JSON file (never pickle: a judge file is data, and loading data must not run
code) that records its format, the feature recipe and widths, the weights and how it was trained.
`AnswerJudge.load` refuses a file of another kind, of a newer format or feature recipe, or with
missing or malformed values, with a `ConfigError` that names the file and says what is wrong.

`LearnedJudgeGate` puts a judge in a cascade: it accepts an answer when the predicted probability
that it is good reaches its threshold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from ..datasets import OutcomeTable, OutcomeTableError
from ._answer_features import ANSWER_FEATURES_VERSION, SHAPE_FEATURES, answer_features
from ._gate import AnswerCheck, Verdict

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ANSWER_JUDGE_FORMAT", "AnswerJudge", "LearnedJudgeGate"]

ANSWER_JUDGE_FORMAT = "gearshift-answer-judge"
"""The `format` field of a saved judge file."""

_FILE_VERSION = 1
_DEFAULT_DIMS = 2048


@dataclass(frozen=True, slots=True, eq=False)  # eq over an ndarray field would be ambiguous
class AnswerJudge:
    """A trained answer judge: `predict` gives P(answer is good) for (prompt, answer) pairs.

    `models` are the outcome-table models whose answers it was trained on, `label_threshold` the score
    that counted as good, `weights` and `bias` the logistic regression over `answer_features`.
    """

    models: tuple[str, ...]
    weights: np.ndarray
    bias: float
    prompt_dims: int = _DEFAULT_DIMS
    answer_dims: int = _DEFAULT_DIMS
    label_threshold: float = 0.5
    trained_on: int = 0
    regularization: float = 1.0

    @property
    def feature_count(self) -> int:
        """The length of the feature vectors the weights apply to."""
        return self.prompt_dims + self.answer_dims + len(SHAPE_FEATURES)

    # -- training -------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        table: OutcomeTable,
        *,
        models: Sequence[str],
        label_threshold: float = 0.5,
        prompt_dims: int = _DEFAULT_DIMS,
        answer_dims: int = _DEFAULT_DIMS,
        regularization: float = 1.0,
    ) -> AnswerJudge:
        """Fit a judge on the recorded answers of `models`.

        Train it on the answers it will judge: the cheaper models' of a cascade. (On the bundled GSM8K
        data, a judge of Mixtral's answers trained on Mixtral's answers alone ranks held-out ones at AUC
        0.77; trained on both models' answers, at 0.70: tests/benchmarks/cascade_offline.py.)

        `regularization` is the inverse strength C of the L2 penalty. Raises `OutcomeTableError` when
        the table records no responses of those models, or when every answer scored on the same side
        of `label_threshold` (nothing to tell apart).
        """
        if isinstance(models, str):
            raise TypeError("models takes a sequence of model ids, not one string")
        chosen = tuple(models)
        if not chosen:
            raise ValueError("name at least one model whose answers the judge learns from")
        unknown = [m for m in chosen if m not in table.models]
        if unknown:
            raise OutcomeTableError(
                f"the table has no model {', '.join(map(repr, unknown))} (it has: {', '.join(table.models)})"
            )
        prompts, answers, labels = [], [], []
        for row in table:
            for model in chosen:
                outcome = row.outcomes.get(model)
                if outcome is not None and outcome.response is not None:
                    prompts.append(row.prompt_text)
                    answers.append(outcome.response)
                    labels.append(outcome.score >= label_threshold)
        used = tuple(
            m for m in chosen if any(m in r.outcomes and r.outcomes[m].response is not None for r in table)
        )
        if not prompts:
            raise OutcomeTableError(
                f"no row records a response of {', '.join(chosen)}: the answer judge learns from recorded "
                "answers (the bundled GSM8K and MT-Bench tables carry them; MMLU does not)"
            )
        import numpy as np  # imported here, as everywhere in this module: `import gearshift` stays light

        y = np.array(labels, dtype=np.int64)
        if y.min() == y.max():
            side = "at or above" if y[0] else "below"
            raise OutcomeTableError(
                f"all {len(y)} recorded answers scored {side} {label_threshold}: a judge needs good and bad "
                "answers to learn from"
            )
        x = answer_features(prompts, answers, prompt_dims=prompt_dims, answer_dims=answer_dims)
        try:
            from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise ConfigError(
                "training an answer judge needs scikit-learn; install it with: pip install 'gearshift[train]'"
            ) from None
        fitted = LogisticRegression(C=regularization, solver="liblinear", random_state=0).fit(x, y)
        return cls(
            models=used,
            weights=np.asarray(fitted.coef_[0], dtype=np.float64),
            bias=float(fitted.intercept_[0]),
            prompt_dims=prompt_dims,
            answer_dims=answer_dims,
            label_threshold=label_threshold,
            trained_on=len(y),
            regularization=regularization,
        )

    # -- predicting -----------------------------------------------------------------------------

    def predict(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        """P(answer is good) for each (prompt, answer) pair: float64, shape (n,)."""
        import numpy as np

        x = answer_features(prompts, answers, prompt_dims=self.prompt_dims, answer_dims=self.answer_dims)
        logits = x @ self.weights + self.bias
        probabilities: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
        return probabilities

    def predict_one(self, prompt: str, answer: str) -> float:
        """P(answer is good) for one pair."""
        return float(self.predict([prompt], [answer])[0])

    def threshold_for(self, table: OutcomeTable, model: str, *, escalation_rate: float) -> float:
        """The gate threshold at which about `escalation_rate` of `model`'s recorded answers in `table`
        would be rejected (the rate-quantile of the judge's predictions on them)."""
        if not 0.0 <= escalation_rate <= 1.0:
            raise ValueError(f"escalation_rate must be in [0, 1], got {escalation_rate}")
        pairs = [
            (row.prompt_text, row.outcomes[model].response or "")
            for row in table
            if model in row.outcomes and row.outcomes[model].response is not None
        ]
        if not pairs:
            raise OutcomeTableError(f"no row records a response of {model!r}")
        import numpy as np

        predicted = self.predict([p for p, _ in pairs], [a for _, a in pairs])
        return float(np.quantile(predicted, escalation_rate))

    # -- files ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form that `save` writes."""
        return {
            "format": ANSWER_JUDGE_FORMAT,
            "version": _FILE_VERSION,
            "features": {
                "recipe": ANSWER_FEATURES_VERSION,
                "prompt_dims": self.prompt_dims,
                "answer_dims": self.answer_dims,
                "shape": list(SHAPE_FEATURES),
            },
            "models": list(self.models),
            "label_threshold": self.label_threshold,
            "trained_on": self.trained_on,
            "regularization": self.regularization,
            "bias": self.bias,
            "weights": [float(w) for w in self.weights],
        }

    def save(self, path: str | Path) -> None:
        """Write the judge to `path` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<python>") -> AnswerJudge:
        """Rebuild a judge from `to_dict`'s form; `ConfigError` naming `source` when it is not one."""
        return _parse(data, source)

    @classmethod
    def load(cls, path: str | Path) -> AnswerJudge:
        """Read a judge that `save` wrote; `ConfigError` naming the file when it is not one."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("no such answer-judge file", source=source) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the answer-judge file: {exc}", source=source) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"not an answer-judge file: not JSON ({exc.msg} at line {exc.lineno})", source=source
            ) from None
        return _parse(data, source)


def _parse(data: object, source: str) -> AnswerJudge:
    import numpy as np

    def bad(message: str) -> ConfigError:
        return ConfigError(f"not a usable answer-judge file: {message}", source=source)

    if not isinstance(data, Mapping) or data.get("format") != ANSWER_JUDGE_FORMAT:
        shown = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise bad(f"its format is {shown!r}, expected {ANSWER_JUDGE_FORMAT!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad(f"its version is {version!r}, expected a positive integer")
    if version > _FILE_VERSION:
        raise bad(
            f"it was written by a newer gearshift (file version {version}; this one reads {_FILE_VERSION})"
        )
    features = data.get("features")
    if not isinstance(features, Mapping):
        raise bad("the 'features' table is missing")
    recipe = features.get("recipe")
    if recipe != ANSWER_FEATURES_VERSION:
        raise bad(
            f"it uses feature recipe {recipe!r}; this gearshift computes recipe {ANSWER_FEATURES_VERSION}"
        )
    dims = {}
    for key in ("prompt_dims", "answer_dims"):
        value = features.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad(f"features.{key} is {value!r}, expected a positive integer")
        dims[key] = value
    shape = features.get("shape")
    if not isinstance(shape, list) or shape != list(SHAPE_FEATURES):
        raise bad("its answer-shape columns differ from this gearshift's")
    weights = data.get("weights")
    if not isinstance(weights, list) or not all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in weights
    ):
        raise bad("'weights' must be a list of finite numbers")
    expected = dims["prompt_dims"] + dims["answer_dims"] + len(SHAPE_FEATURES)
    if len(weights) != expected:
        raise bad(f"it holds {len(weights)} weights for {expected} features (truncated or corrupt)")
    bias = data.get("bias")
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias):
        raise bad(f"'bias' is {bias!r}, expected a finite number")
    models = data.get("models")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise bad("'models' must be a list of model ids")
    label_threshold = data.get("label_threshold", 0.5)
    trained_on = data.get("trained_on", 0)
    regularization = data.get("regularization", 1.0)
    if isinstance(label_threshold, bool) or not isinstance(label_threshold, (int, float)):
        raise bad(f"'label_threshold' is {label_threshold!r}, expected a number in [0, 1]")
    if not 0.0 <= label_threshold <= 1.0:
        raise bad(f"'label_threshold' is {label_threshold!r}, expected a number in [0, 1]")
    if isinstance(trained_on, bool) or not isinstance(trained_on, int) or trained_on < 0:
        raise bad(f"'trained_on' is {trained_on!r}, expected a count of answers")
    return AnswerJudge(
        models=tuple(models),
        weights=np.array(weights, dtype=np.float64),
        bias=float(bias),
        prompt_dims=dims["prompt_dims"],
        answer_dims=dims["answer_dims"],
        label_threshold=float(label_threshold),
        trained_on=trained_on,
        regularization=float(regularization) if isinstance(regularization, (int, float)) else 1.0,
    )


def _prompt_text(answer: AnswerCheck) -> str:
    # As outcome tables record prompts: the user messages, joined by blank lines.
    return "\n\n".join(m.text for m in answer.request.messages if m.role == "user")


def _answer_text(answer: AnswerCheck) -> str:
    calls = "\n".join(f"{c.name}({c.arguments})" for c in answer.response.tool_calls)
    return "\n".join(part for part in (answer.response.text, calls) if part)


class LearnedJudgeGate:
    """Accepts an answer when the judge's P(answer is good) reaches `threshold`."""

    name = "learned-judge"

    def __init__(self, judge: AnswerJudge, threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.judge = judge
        self.threshold = threshold

    def __repr__(self) -> str:
        return f"LearnedJudgeGate(threshold={self.threshold}, trained on {self.judge.trained_on} answers)"

    async def check(self, answer: AnswerCheck) -> Verdict:
        """Score the answer; reject it below the threshold."""
        # A few hundred microseconds of NumPy on one short pair: not worth a thread hop.
        p = self.judge.predict_one(_prompt_text(answer), _answer_text(answer))
        if p >= self.threshold:
            return Verdict(True, self.name, confidence=p)
        return Verdict(
            False,
            self.name,
            f"the learned judge rates this answer good with probability {p:.2f}, below {self.threshold:g}",
            p,
        )
