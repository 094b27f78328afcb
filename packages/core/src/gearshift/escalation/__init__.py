"""Learned escalation: learn from logged agent runs when a cheap model must hand a step up.

- `train_escalation(runs)` fits an `EscalationModel` on the prefixes of a cheap and a strong model's
  runs (`gearshift.datasets.AgentRuns`): a logistic risk that the cheap run fails, over
  domain-general features of the run so far (tool errors in a row and in total, repeated identical
  calls, steps and tokens so far, empty replies, malformed tool calls, user turns, the step type, the
  assistant saying it cannot) and, where it helps, the task router's prior on the opening prompt,
  with a threshold calibrated on the training runs to a success floor or a share of hand-overs.
- `model.save(path)` / `EscalationModel.load(path)` write and read one portable JSON file (NumPy only).
- `EscalationPolicy(base, model)` is a policy: the base's decision, moved to the next tier up when the
  risk crosses the threshold, with the reasons in plain words and the risk in `Decision.scores`.
- `LiveEscalation(model)` is what a `Router(..., escalation=...)` (or `[routing.escalation]` in
  gearshift.toml, `EscalationConfig`) holds: that policy on every step, and each run's `RunFloor`, so a
  run handed up stays up.
"""

from ._features import FEATURE_NAMES, RunFacts, facts_of, feature_vector
from ._live import DEFAULT_MAX_RUNS, EscalationConfig, LiveEscalation
from ._model import ESCALATION_FORMAT, EscalationModel, EscalationTraining
from ._policy import CheapestPolicy, EscalationPolicy, RunFloor
from ._training import DEFAULT_SUCCESS_FLOOR, PENALTIES, run_features, train_escalation

__all__ = [
    "DEFAULT_MAX_RUNS",
    "DEFAULT_SUCCESS_FLOOR",
    "ESCALATION_FORMAT",
    "FEATURE_NAMES",
    "PENALTIES",
    "CheapestPolicy",
    "EscalationConfig",
    "EscalationModel",
    "EscalationPolicy",
    "EscalationTraining",
    "LiveEscalation",
    "RunFacts",
    "RunFloor",
    "facts_of",
    "feature_vector",
    "run_features",
    "train_escalation",
]
