"""Training the learned escalation on the prefixes of logged agent runs, and calibrating its threshold.

Every step of every cheap training run is one example: its features (`feature_vector`, read from the
prefix through the live code path) and a label that is the same for all steps of a task: how far the
cheap run fell short (1 - its score). The label is the cheap run's failure, not "the strong run did
better": what the cheap prefix shows is the cheap run's trouble, and whether the strong model would
then succeed hardly depends on the cheap prefix, so both labels rank steps alike, while failure has
about twice the positive tasks and far less noise (two trials of one model often disagree, and
"strong did better" compounds the noise of both). Whether the strong model helps on this kind of
task is the task prior's part. Each task weighs 1 in total however long its run, so long runs do
not drown short ones. The fit is a logistic regression with a strong L2 penalty on standardized
features (NumPy Newton steps, no scikit-learn): a few domain-general features and a heavy penalty
generalize to agents it never saw.

With the task prior (`prior=True`; by default tried on tables of at least `PRIOR_MIN_TASKS` tasks
and kept when it lowers the out-of-fold log-loss, as the penalty is chosen), each task's steps also
carry the task router's predicted gain on its opening prompt; for training, that gain comes from a
router that never saw the task (cross-fitted over the inner folds), as it will be for a task met
live, and the router trained on every training task is embedded in the model.

Tasks with the same opening prompt (repeated trials) stay in one inner fold. The threshold is
calibrated on the training runs only, on out-of-fold risks (each task scored by a model fitted
without it), by replaying the restart rule at every candidate threshold:
`success_floor` keeps the cheapest threshold whose success is at least that share of always-strong's;
`target_handover_share` the one whose share of tasks handed over is nearest to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import ConfigError
from ..datasets import AgentRuns
from ..evaluation._agent_replay import StepPrefixes, handover_steps, replay_handovers
from ..evaluation._agent_task_router import task_folds, task_groups
from ._features import FEATURE_NAMES, facts_of, feature_vector
from ._model import PRIOR_FEATURE, EscalationModel, EscalationTraining
from ._prior import TaskPrior, cross_fitted_gains, train_prior

__all__ = [
    "DEFAULT_SUCCESS_FLOOR",
    "PENALTIES",
    "PRIOR_MIN_TASKS",
    "inner_folds",
    "run_features",
    "train_escalation",
    "use_prior",
    "with_gains",
]

PENALTIES: tuple[float, ...] = (2.0, 8.0, 32.0)
"""The L2 penalties on the standardized weights (against a total example weight of one per task) that
training chooses from by out-of-fold log-loss on the training tasks: all of them strong."""

DEFAULT_SUCCESS_FLOOR = 0.95
"""Default calibration: keep 95% of always-strong's success on the training runs, as cheaply as possible."""

PRIOR_MIN_TASKS = 40
"""From how many distinct training tasks the task prior is used by default: a router trained on fewer
opening prompts (and cross-fitted on fewer still) predicts little beyond noise."""

_NEWTON_STEPS = 30
_INNER_FOLDS = 5


def run_features(prefixes: StepPrefixes) -> list[np.ndarray]:
    """Per task, the (steps, features) array of the cheap run's prefixes."""
    width = len(FEATURE_NAMES)
    return [
        np.array([feature_vector(facts_of(route)) for route in routes]).reshape(len(routes), width)
        for routes in prefixes.steps
    ]


def with_gains(features: Sequence[np.ndarray], gains: np.ndarray) -> list[np.ndarray]:
    """Each task's (steps, features) array with its prior gain appended as the last column."""
    return [np.hstack([f, np.full((len(f), 1), g)]) for f, g in zip(features, gains, strict=True)]


def inner_folds(runs: AgentRuns, seed: int) -> list[np.ndarray]:
    """The folds training holds tasks out with (repeated trials together); none when too few tasks."""
    distinct = int(task_groups(runs).max()) + 1 if len(runs) else 0
    # Rows when too few distinct opening prompts to fold them (`task_folds` then splits rows).
    folds = min(_INNER_FOLDS, (distinct if distinct >= 8 else len(runs)) // 4)
    return task_folds(runs, folds, seed) if folds >= 2 else []


def _labels(runs: AgentRuns) -> np.ndarray:
    """Per task, how far the cheap run fell short of success."""
    return np.array([min(max(1.0 - t.weak.score, 0.0), 1.0) for t in runs.tasks])


def _fit(
    features: Sequence[np.ndarray], labels: np.ndarray, penalty: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, weights, intercept) of a weighted L2 logistic regression."""
    x = np.vstack([f for f in features if len(f)])
    y = np.concatenate([np.full(len(f), label) for f, label in zip(features, labels, strict=True) if len(f)])
    w = np.concatenate([np.full(len(f), 1.0 / len(f)) for f in features if len(f)])
    mean = np.average(x, axis=0, weights=w)
    spread = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    scale = np.where(spread > 1e-9, spread, 1.0)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    theta = np.zeros(z.shape[1])
    base = float(np.clip(np.average(y, weights=w), 1e-3, 1 - 1e-3))
    theta[-1] = np.log(base / (1 - base))
    ridge = np.full(z.shape[1], penalty)
    ridge[-1] = 0.0  # the intercept is not shrunk
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(z @ theta)))
        gradient = z.T @ (w * (p - y)) + ridge * theta
        hessian = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(ridge) + 1e-9 * np.eye(z.shape[1])
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return mean, scale, theta[:-1].copy(), float(theta[-1])


def _risks(model: tuple[np.ndarray, np.ndarray, np.ndarray, float], features: np.ndarray) -> np.ndarray:
    mean, scale, weights, intercept = model
    return np.asarray(
        1.0 / (1.0 + np.exp(-(((features - mean) / scale) @ weights + intercept))), dtype=np.float64
    )


def _out_of_fold(
    features: list[np.ndarray], labels: np.ndarray, penalty: float, folds: Sequence[np.ndarray]
) -> list[np.ndarray]:
    n = len(features)
    if not folds:
        model = _fit(features, labels, penalty)
        return [_risks(model, f) for f in features]
    risks: list[np.ndarray] = [np.empty(0)] * n
    for test in folds:
        held = set(test.tolist())
        train = [i for i in range(n) if i not in held]
        model = _fit([features[i] for i in train], labels[train], penalty)
        for i in held:
            risks[i] = _risks(model, features[i])
    return risks


def _log_loss(risks: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """Out-of-fold log-loss, each task weighing one whatever its number of steps."""
    total = 0.0
    for r, label in zip(risks, labels, strict=True):
        if r.size:
            p = np.clip(r, 1e-6, 1 - 1e-6)
            total += float(np.mean(-(label * np.log(p) + (1 - label) * np.log(1 - p))))
    return total


def calibration_curve(
    runs: AgentRuns, risks: Sequence[np.ndarray]
) -> tuple[tuple[float, float, float, float], ...]:
    """(threshold, hand-over share, success, cost per task) at every threshold that changes a hand-over."""
    peaks = np.array([float(r.max()) if r.size else 0.0 for r in risks])
    thresholds = np.unique(np.concatenate([[0.0, 1.0], np.nextafter(peaks, 0.0)]))
    curve = []
    for threshold in thresholds:
        replay = replay_handovers("", runs, handover_steps(risks, float(threshold)))
        curve.append((float(threshold), replay.handover_rate, replay.success_rate, replay.cost_per_task))
    return tuple(curve)


def pick_threshold(
    curve: Sequence[tuple[float, float, float, float]],
    strong_success: float,
    *,
    success_floor: float | None,
    target_handover_share: float | None,
) -> tuple[float, str]:
    """The threshold (and its description) a calibration target asks for, on a training curve."""
    if target_handover_share is not None:
        best = min(curve, key=lambda p: (abs(p[1] - target_handover_share), -p[0]))
        return best[0], f"hand-over share {target_handover_share:.0%} (training: {best[1]:.0%})"
    floor = DEFAULT_SUCCESS_FLOOR if success_floor is None else success_floor
    need = floor * strong_success
    # A threshold counts only when every lower one (more hand-overs) meets the floor too: on a small
    # table a lucky high threshold can meet it alone, and held out it would not.
    meeting = []
    for point in sorted(curve):
        if point[2] < need - 1e-12:
            break
        meeting.append(point)
    if meeting:
        best = min(meeting, key=lambda p: (p[3], -p[0]))
        met = "met"
    else:
        best = max(curve, key=lambda p: (p[2], -p[3]))
        met = "not reachable; best success kept"
    return best[0], (
        f"success floor {floor:.0%} of always-strong ({met}; training: success {best[2]:.3f} at "
        f"${best[3]:.4f} per task)"
    )


def use_prior(prior: bool | None, runs: AgentRuns) -> bool:
    """Whether training on `runs` uses the task prior: as asked, else by the table's size."""
    if prior is not None:
        return prior
    if int(task_groups(runs).max()) + 1 < PRIOR_MIN_TASKS:
        return False
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def train_escalation(
    runs: AgentRuns,
    *,
    success_floor: float | None = None,
    target_handover_share: float | None = None,
    penalty: float | None = None,
    seed: int = 0,
    prefixes: StepPrefixes | None = None,
    prior: bool | None = None,
    prior_gains: np.ndarray | None = None,
    task_prior: TaskPrior | None = None,
) -> EscalationModel:
    """Fit the escalation on `runs` (a cheap and a strong model's runs) and calibrate its threshold.

    Give at most one target: `success_floor` (a share of always-strong's success on these runs,
    default 0.95) or `target_handover_share` (the share of tasks handed to the strong model).
    `penalty` fixes the L2 penalty; by default it is chosen from `PENALTIES` by out-of-fold log-loss.
    `prefixes` reuses prefixes already built for these runs. `prior` forces the task prior on or off;
    by default it is tried from `PRIOR_MIN_TASKS` distinct tasks (when scikit-learn is installed) and
    kept only when it lowers the out-of-fold log-loss on the training tasks. An evaluation
    that has them already may pass each training task's held-out gain (`prior_gains`, from routers
    that never saw that task) and the prior to embed (`task_prior`, trained on all of `runs`).
    """
    if success_floor is not None and target_handover_share is not None:
        raise ConfigError("give one calibration target: success_floor or target_handover_share, not both")
    for name, value in (("success_floor", success_floor), ("target_handover_share", target_handover_share)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {value}", key=name)
    if penalty is not None and not penalty > 0:
        raise ConfigError(f"penalty must be positive, got {penalty}", key="penalty")
    if len(runs) < 4:
        raise ConfigError(f"training the escalation needs at least 4 tasks, got {len(runs)}")
    prefixes = prefixes if prefixes is not None else StepPrefixes(runs)
    features = run_features(prefixes)
    labels = _labels(runs)
    folds = inner_folds(runs, seed)
    penalties = (penalty,) if penalty else PENALTIES
    # Every candidate (with or without the prior, at each penalty) is judged by out-of-fold log-loss
    # on the training tasks; with `prior=None` the prior is kept only when it lowers that loss.
    candidates: dict[tuple[bool, float], list[np.ndarray]] = {}
    sets = {False: features}
    if use_prior(prior, runs):
        if prior_gains is None:
            prior_gains = cross_fitted_gains(runs, folds or task_folds(runs, 2, seed), seed=seed)
        sets[True] = with_gains(features, np.asarray(prior_gains, dtype=np.float64))
        if prior:
            del sets[False]
    for with_prior, x in sets.items():
        for p in penalties:
            candidates[with_prior, p] = _out_of_fold(x, labels, p, folds)
    chosen, penalty = min(candidates, key=lambda c: (_log_loss(candidates[c], labels), c[0], -c[1]))
    risks = candidates[chosen, penalty]
    features = sets[chosen]
    names = (*FEATURE_NAMES, PRIOR_FEATURE) if chosen else FEATURE_NAMES
    if not chosen:
        task_prior = None
    elif task_prior is None:
        task_prior = train_prior(runs, seed=seed)
    curve = calibration_curve(runs, risks)
    strong_success = float(np.mean([t.strong.score for t in runs.tasks]))
    threshold, target = pick_threshold(
        curve, strong_success, success_floor=success_floor, target_handover_share=target_handover_share
    )
    mean, scale, weights, intercept = _fit(features, labels, penalty)
    stacked = np.vstack([f for f in features if len(f)])
    steps = sum(len(f) for f in features)
    training = EscalationTraining(len(runs), steps, float(labels.mean()), penalty)
    return EscalationModel(
        mean,
        scale,
        weights,
        intercept,
        threshold,
        target,
        training,
        curve,
        names,
        stacked.min(axis=0),
        stacked.max(axis=0),
        task_prior,
    )
