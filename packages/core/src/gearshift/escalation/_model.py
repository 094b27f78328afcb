"""The learned escalation model: a logistic risk over run features, a calibrated threshold, one JSON file.

```json
{"format": "gearshift.learned-escalation", "version": 1, "sha256": "<hex of the canonical body>",
 "body": {"features": ["consecutive_tool_errors", ..., "task_prior"], "mean": {...array},
          "scale": {...array}, "lower": {...array}, "upper": {...array}, "weights": {...array},
          "intercept": -1.2, "threshold": 0.4, "target": "success floor ...",
          "training": {"tasks": 92, "steps": 1500, "positive_share": 0.26, "penalty": 5.0},
          "curve": [[threshold, handover_share, success, cost_per_task], ...],
          "prior": {...a learned router's body, or null}}}
```

`lower` and `upper` are the smallest and largest value each feature took in training: a run far
longer (or shorter, or more error-ridden) than any training run is read as the most extreme one seen,
so a model applied to another agent cannot be pushed to a certainty it never learned. `prior`, when
present, is the task router (`TaskPrior`) whose predicted gain on the opening prompt is the last
feature, `task_prior`. Loading needs only NumPy; a file that is missing, cut short, edited by hand,
of another kind or for other features is refused with a `ConfigError` naming the file and what is
wrong.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._errors import ConfigError
from ..learning._artifact import ArtifactReader, encode_array, read_artifact, write_artifact
from ..policies import RouteInput
from ._features import FEATURE_NAMES, RunFacts, feature_vector
from ._prior import TaskPrior

__all__ = ["ESCALATION_FORMAT", "PRIOR_FEATURE", "EscalationModel", "EscalationTraining"]

PRIOR_FEATURE = "task_prior"
"""The name of the task router's prior among a model's features (always the last one)."""

ESCALATION_FORMAT = "gearshift.learned-escalation"
"""The `format` tag of every escalation artifact."""

_NOUN = "escalation artifact"
_HOW = "`gearshift train-escalation` or EscalationModel.save"


@dataclass(frozen=True, slots=True)
class EscalationTraining:
    """What a model was trained on: tasks, steps (prefixes), the share of tasks the cheap run failed
    (the label), the L2 penalty chosen."""

    tasks: int
    steps: int
    positive_share: float
    penalty: float


@dataclass(frozen=True, eq=False)
class EscalationModel:
    """Predicts, from a run's features so far, the risk that the cheap run fails.

    `risk(x) = sigmoid(weights . (clip(x, lower, upper) - mean) / scale + intercept)`. `threshold` is
    the calibrated point above which a step is handed to the next tier up; `target` says how it was
    chosen. `curve` holds the training replay at each candidate threshold: (threshold, hand-over share,
    success, cost per task). With a `prior`, the features end with `task_prior`, the task router's
    predicted gain of the strong model on the run's opening prompt (`vector` computes it).
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    threshold: float
    target: str
    training: EscalationTraining
    curve: tuple[tuple[float, float, float, float], ...] = ()
    features: tuple[str, ...] = field(default=FEATURE_NAMES)
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    prior: TaskPrior | None = None

    def vector(self, route: RouteInput, facts: RunFacts) -> np.ndarray:
        """The model's features at a live step: the run's facts, then the prior of its opening prompt."""
        x = feature_vector(facts)
        if self.prior is None:
            return x
        return np.append(x, self.prior.gain(route.request.messages))

    def _clipped(self, features: np.ndarray) -> np.ndarray:
        if self.lower is None or self.upper is None:
            return features
        return np.asarray(np.clip(features, self.lower, self.upper), dtype=np.float64)

    def risks(self, features: np.ndarray) -> np.ndarray:
        """The risk for each row of a (steps, features) array."""
        margin = ((self._clipped(features) - self.mean) / self.scale) @ self.weights + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-margin)), dtype=np.float64)

    def risk(self, features: np.ndarray) -> float:
        """The risk of one feature vector."""
        margin = float(((self._clipped(features) - self.mean) / self.scale) @ self.weights) + self.intercept
        return 1.0 / (1.0 + math.exp(-margin)) if margin > -700 else 0.0

    def with_threshold(self, threshold: float, target: str) -> EscalationModel:
        """The same model operating at another threshold."""
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"an escalation threshold must be in [0, 1], got {threshold}")
        return replace(self, threshold=float(threshold), target=target)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model as one portable JSON file (never a pickle)."""
        body: dict[str, Any] = {
            "features": list(self.features),
            "mean": encode_array(self.mean, "float64"),
            "scale": encode_array(self.scale, "float64"),
            "weights": encode_array(self.weights, "float64"),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "target": self.target,
            "training": {
                "tasks": self.training.tasks,
                "steps": self.training.steps,
                "positive_share": self.training.positive_share,
                "penalty": self.training.penalty,
            },
            "curve": [list(point) for point in self.curve],
            "prior": None,
        }
        if self.lower is not None and self.upper is not None:
            body["lower"] = encode_array(self.lower, "float64")
            body["upper"] = encode_array(self.upper, "float64")
        if self.prior is not None:
            from ..learning._router_model import router_body

            body["prior"] = router_body(self.prior.router)
        write_artifact(path, body, kind=ESCALATION_FORMAT)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EscalationModel:
        """Read a model `save` wrote; `ConfigError` names the file and what is wrong with it."""
        reader = read_artifact(path, kind=ESCALATION_FORMAT, noun=_NOUN, how=_HOW)
        body = reader.body
        features = tuple(reader.get(body, "features", list, "body"))
        raw_prior = body.get("prior")
        expected = (*FEATURE_NAMES, PRIOR_FEATURE) if raw_prior is not None else FEATURE_NAMES
        if features != expected:
            raise reader.fail(
                f"body.features are {list(features)}, but this gearshift computes {list(expected)}; "
                "train it again with this version"
            )
        width = (len(features),)
        lower = upper = None
        if "lower" in body or "upper" in body:
            lower = reader.array(body, "lower", "body", width)
            upper = reader.array(body, "upper", "body", width)
            if not (lower <= upper).all():
                raise reader.fail("body.lower holds a value above body.upper")
        prior = _prior(reader, raw_prior)
        mean = reader.array(body, "mean", "body", width)
        scale = reader.array(body, "scale", "body", width)
        if (scale <= 0).any():
            raise reader.fail("body.scale holds a value that is not positive")
        weights = reader.array(body, "weights", "body", width)
        intercept = float(reader.get(body, "intercept", (int, float), "body"))
        threshold = float(reader.get(body, "threshold", (int, float), "body"))
        if not (math.isfinite(intercept) and 0.0 <= threshold <= 1.0):
            raise reader.fail("body.intercept must be finite and body.threshold in [0, 1]")
        raw = reader.get(body, "training", dict, "body")
        training = EscalationTraining(
            int(reader.get(raw, "tasks", int, "body.training")),
            int(reader.get(raw, "steps", int, "body.training")),
            float(reader.get(raw, "positive_share", (int, float), "body.training")),
            float(reader.get(raw, "penalty", (int, float), "body.training")),
        )
        curve = []
        for index, point in enumerate(reader.get(body, "curve", list, "body")):
            if (
                not isinstance(point, list)
                or len(point) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
            ):
                raise reader.fail(f"body.curve[{index}] must be [threshold, share, success, cost]")
            curve.append((float(point[0]), float(point[1]), float(point[2]), float(point[3])))
        target = reader.get(body, "target", str, "body")
        return cls(
            mean,
            scale,
            weights,
            intercept,
            threshold,
            target,
            training,
            tuple(curve),
            features,
            lower,
            upper,
            prior,
        )

    def __repr__(self) -> str:
        return (
            f"EscalationModel(threshold={self.threshold:.3f}, target={self.target!r}, "
            f"trained on {self.training.tasks} tasks{', with the task prior' if self.prior else ''})"
        )


def _prior(reader: ArtifactReader, raw: object) -> TaskPrior | None:
    """The embedded task router, read with the router artifact's own checks (errors name `body.prior`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise reader.fail("body.prior must be a learned router's body or null")
    from ..learning._router_model import router_from_body

    router = router_from_body(ArtifactReader(reader.path, raw, f"{_NOUN} (body.prior)"), None)
    try:
        return TaskPrior(router)
    except ValueError as error:
        raise reader.fail(f"body.prior: {error}") from None
