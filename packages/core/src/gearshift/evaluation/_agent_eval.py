"""`evaluate_agents`: every policy replayed over agent runs, cross-fitted by task, with 95% intervals.

Baselines, always: `always-weak`, `always-strong`, `oracle`, `task-router`. Step-aware policies, on
request (all by default): `scorer-steps` (the hand-set `SignalScorer` with its step biases and
escalation triggers), `learned-escalation` (the cheap model, handed up by `EscalationPolicy` when the
learned risk crosses its calibrated threshold) and `task-router+escalation` (the task router first;
tasks it keeps on the cheap model then run under the learned escalation).

Learned parts are cross-fitted: the tasks are split into `folds` (seeded) and each task is routed by
models trained on the other folds only; with `train`, they are trained on that table instead and
every task of the evaluated one is routed by them. The replay itself is `_agent_replay`'s (restart
rule, the shipped policies asked through the live code path). Thresholded policies also get a curve:
their (cost per task, success) at every threshold, over the same held-out risks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import GearshiftError
from .._progress import WorkCounter
from ..datasets import AgentRuns
from ._agent_replay import (
    PolicyReplay,
    StepPrefixes,
    handover_steps,
    replay_fixed,
    replay_handovers,
    replay_oracle,
    replay_steps,
    replay_task_choice,
)
from ._agent_task_router import cross_fit_task_router, shared_prompts, task_folds, task_groups

if TYPE_CHECKING:
    from ..learning import LearnedRouter

__all__ = [
    "AGENT_BASELINES",
    "AGENT_POLICIES",
    "AgentEvalReport",
    "SelfDisagreement",
    "evaluate_agents",
    "self_disagreement",
]

AGENT_BASELINES: tuple[str, ...] = ("always-weak", "always-strong", "oracle", "task-router")
"""What every agent evaluation reports."""

AGENT_POLICIES: tuple[str, ...] = ("scorer-steps", "learned-escalation", "task-router+escalation")
"""The step-aware policies `evaluate_agents` can replay (all of them by default)."""

_CURVE_POINTS = 101


@dataclass(frozen=True, slots=True)
class SelfDisagreement:
    """How often one model's runs of the same task disagree, over the tasks run more than once.

    Tasks are the same when their opening prompts are; two runs disagree when their scores differ by
    0.5 or more (one succeeds, the other fails). `weak` and `strong` are each model's share of
    repeated tasks whose runs do not all agree.
    """

    tasks: int
    runs: int
    weak: float
    strong: float


def self_disagreement(runs: AgentRuns) -> SelfDisagreement | None:
    """The self-disagreement of each model where the table holds several trials of a task, else None."""
    groups = task_groups(runs)
    repeated = [np.flatnonzero(groups == g) for g in np.unique(groups) if (groups == g).sum() > 1]
    if not repeated:
        return None

    def share(scores: np.ndarray) -> float:
        return float(np.mean([np.ptp(scores[members]) >= 0.5 for members in repeated]))

    weak = np.array([t.weak.score for t in runs.tasks])
    strong = np.array([t.strong.score for t in runs.tasks])
    return SelfDisagreement(len(repeated), int(sum(len(m) for m in repeated)), share(weak), share(strong))


@dataclass(frozen=True, slots=True)
class AgentEvalReport:
    """The replayed policies of one evaluation, in report order, and where the data came from."""

    weak: str
    strong: str
    tasks: int
    policies: dict[str, PolicyReplay]
    notes: tuple[str, ...]
    method: str
    self_disagreement: SelfDisagreement | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `gearshift eval-agents --json` prints (`self_disagreement` where measurable)."""
        policies: dict[str, Any] = {}
        for name, replay in self.policies.items():
            success_ci, cost_ci = replay.intervals()
            entry: dict[str, Any] = {
                "success": replay.success_rate,
                "cost_per_task": replay.cost_per_task,
                "cost_per_success": replay.cost_per_success,
                "handover_rate": replay.handover_rate,
                "success_ci": list(success_ci),
                "cost_ci": list(cost_ci),
            }
            if replay.curve is not None:
                entry["curve"] = [list(point) for point in replay.curve]
            policies[name] = entry
        out: dict[str, Any] = {"models": {"weak": self.weak, "strong": self.strong}, "policies": policies}
        if self.self_disagreement is not None:
            agree = self.self_disagreement
            out["self_disagreement"] = {
                "tasks": agree.tasks,
                "runs": agree.runs,
                "weak": agree.weak,
                "strong": agree.strong,
            }
        return out


class AgentEvalError(GearshiftError, ValueError):
    """An agent evaluation that cannot run as asked (unknown policy, too few tasks for the folds)."""


def _check(policies: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(AGENT_POLICIES if policies is None else policies)
    unknown = [name for name in chosen if name not in AGENT_POLICIES and name not in AGENT_BASELINES]
    if unknown:
        raise AgentEvalError(
            f"unknown policy '{unknown[0]}'; agent policies are {', '.join(AGENT_POLICIES)} "
            f"(the baselines {', '.join(AGENT_BASELINES)} are always included)"
        )
    return tuple(name for name in AGENT_POLICIES if name in chosen)


def _curve(runs: AgentRuns, steps_at: Sequence[Sequence[int]]) -> tuple[tuple[float, float], ...]:
    points = []
    for steps in steps_at:
        replay = replay_handovers("", runs, steps)
        points.append((replay.cost_per_task, replay.success_rate))
    return tuple(points)


def _router_curve(runs: AgentRuns, gains: np.ndarray) -> tuple[tuple[float, float], ...]:
    cuts = np.unique(np.concatenate([[-np.inf], gains]))
    return _curve(runs, [[0 if g > cut else -1 for g in gains] for cut in cuts])


@dataclass(slots=True)
class _Escalation:
    steps: list[int]
    risks: list[np.ndarray]


def _pair_gains(runs: AgentRuns, folds: list[np.ndarray], seed: int) -> dict[tuple[int, int], np.ndarray]:
    """`gains[f, g]`: the prior gain of fold g's tasks from a router that saw neither fold f nor fold g.

    Model f's training tasks in fold g get their gain from it: held out from that task, as the nested
    cross-fitting asks, and from the held-out fold f too. One router per pair of folds serves both
    models f and g.
    """
    from ..escalation._prior import train_prior

    gains: dict[tuple[int, int], np.ndarray] = {}
    for f in range(len(folds)):
        for g in range(f + 1, len(folds)):
            held = set(folds[f].tolist()) | set(folds[g].tolist())
            prior = train_prior(runs.subset([i for i in range(len(runs)) if i not in held]), seed=seed)
            gains[f, g] = prior.task_gains([runs.tasks[int(i)] for i in folds[g]])
            gains[g, f] = prior.task_gains([runs.tasks[int(i)] for i in folds[f]])
    return gains


def _escalation(
    runs: AgentRuns,
    prefixes: StepPrefixes,
    folds: list[np.ndarray],
    train: AgentRuns | None,
    seed: int,
    prior: bool | None,
    routers: Sequence[LearnedRouter] = (),
) -> _Escalation:
    """The held-out hand-over steps (through `EscalationPolicy`) and per-step risks of every task.

    With the task prior, each fold's model embeds the router trained on the other folds (the task
    router's, when it was fitted) and its training tasks carry gains from routers that never saw them.
    """
    from ..escalation import CheapestPolicy, EscalationPolicy, run_features, train_escalation
    from ..escalation._prior import TaskPrior, task_opening, train_prior
    from ..escalation._training import use_prior, with_gains

    features = run_features(prefixes)
    steps = [-1] * len(runs)
    risks: list[np.ndarray] = [np.empty(0)] * len(runs)
    if train is not None:
        plan = [(train_escalation(train, seed=seed, prior=prior), np.arange(len(runs)))]
    else:
        plan = []
        n = len(runs)
        kept_of = [[i for i in range(n) if i not in set(test.tolist())] for test in folds]
        prior_on = use_prior(prior, runs.subset(kept_of[0]))
        # The task router's routers read the tables' prompts; they serve as priors when those are
        # the openings a live call sees.
        if any(task_opening(task) != tuple(task.prompt) for task in runs.tasks):
            routers = ()
        pairs = _pair_gains(runs, folds, seed) if prior_on else {}
        for f, test in enumerate(folds):
            kept = kept_of[f]
            gains = fold_prior = None
            if prior_on:
                at = {int(i): k for k, i in enumerate(kept)}
                gains = np.zeros(len(kept))
                for g, other in enumerate(folds):
                    if g != f:
                        gains[[at[int(i)] for i in other]] = pairs[f, g]
                sub = runs.subset(kept)
                fold_prior = TaskPrior(routers[f]) if routers else train_prior(sub, seed=seed)
            model = train_escalation(
                runs.subset(kept),
                seed=seed,
                prefixes=prefixes.subset(kept),
                prior=prior_on,
                prior_gains=gains,
                task_prior=fold_prior,
            )
            plan.append((model, test))
    for model, test in plan:
        policy = EscalationPolicy(CheapestPolicy(), model)
        indices = test.tolist()
        replay = replay_steps("", prefixes.subset(indices), policy)
        held = [features[i] for i in indices]
        if model.prior is not None:
            held = with_gains(held, model.prior.task_gains([runs.tasks[i] for i in indices]))
        for i, step, x in zip(indices, replay.handover_steps.tolist(), held, strict=True):
            steps[i] = step
            risks[i] = model.risks(x) if len(x) else np.empty(0)
    return _Escalation(steps, risks)


def evaluate_agents(
    runs: AgentRuns,
    *,
    policies: Sequence[str] | None = None,
    train: AgentRuns | None = None,
    folds: int = 5,
    seed: int = 0,
    with_task_router: bool = True,
    prior: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> AgentEvalReport:
    """Replay the baselines and `policies` over `runs` (see the module docstring).

    `with_task_router=False` skips the task router (its training is most of the time an evaluation
    takes) and every policy that needs it, the escalation's task prior included unless `prior` asks
    for it: the demo's quick replay. `prior` turns the learned escalation's task prior on or off
    (default: `train_escalation`'s). `on_progress(done, total)` is called as each stage ends (the
    baselines, the task router, the step scorer, the learned escalation).
    """
    chosen = _check(policies)
    if not with_task_router:
        chosen = tuple(name for name in chosen if name != "task-router+escalation")
        if prior is None:
            prior = False
    escalating = "learned-escalation" in chosen or "task-router+escalation" in chosen
    step = WorkCounter(1 + with_task_router + ("scorer-steps" in chosen) + escalating, on_progress).step

    if train is None and not 2 <= folds <= len(runs):
        raise AgentEvalError(f"--folds must be between 2 and the {len(runs)} tasks, got {folds}")
    prefixes = StepPrefixes(runs)
    try:
        splits = task_folds(runs, folds, seed) if train is None else []
    except ValueError as error:
        raise AgentEvalError(f"--folds: {error}") from None
    results: dict[str, PolicyReplay] = {
        "always-weak": replay_fixed(runs, strong=False),
        "always-strong": replay_fixed(runs, strong=True),
        "oracle": replay_oracle(runs),
    }
    step()
    router = None
    if with_task_router:
        router = cross_fit_task_router(runs, prefixes, folds=splits or None, train=train, seed=seed)
        curve = _router_curve(runs, router.gains)
        results["task-router"] = replay_task_choice("task-router", runs, router.strong, curve)
        step()
    if "scorer-steps" in chosen:
        from ..policies import SignalScorer

        results["scorer-steps"] = replay_steps("scorer-steps", prefixes, SignalScorer())
        step()
    if escalating:
        routers = router.routers if router is not None else ()
        held = _escalation(runs, prefixes, splits, train, seed, prior, routers)
        grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, _CURVE_POINTS), *held.risks]))
        grid = grid[:: max(1, len(grid) // 400)]
        sweeps = [handover_steps(held.risks, float(t)) for t in grid]
        if "learned-escalation" in chosen:
            results["learned-escalation"] = replay_handovers(
                "learned-escalation", runs, held.steps, _curve(runs, sweeps)
            )
        if "task-router+escalation" in chosen and router is not None:
            front = [0 if strong else step for strong, step in zip(router.strong, held.steps, strict=True)]
            swept = [
                [0 if strong else step for strong, step in zip(router.strong, steps, strict=True)]
                for steps in sweeps
            ]
            results["task-router+escalation"] = replay_handovers(
                "task-router+escalation", runs, front, _curve(runs, swept)
            )
        step()
    method = (
        f"trained on {len(train)} tasks of {train.source}, replayed on all {len(runs)}"
        if train is not None
        else f"{folds}-fold cross-fitting by task (seed {seed}): each task routed by models that never saw it"
    )
    split_note = shared_prompts(runs, folds) if train is None else None
    notes = (*runs.notes, split_note) if split_note else runs.notes
    return AgentEvalReport(runs.weak, runs.strong, len(runs), results, notes, method, self_disagreement(runs))
