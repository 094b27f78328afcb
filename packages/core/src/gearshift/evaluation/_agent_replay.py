"""Replaying routing policies over logged agent runs of a cheap and a strong model, exactly.

- **always-weak / always-strong**: the logged runs as they are.
- **oracle**: per task the cheapest model that did best (the ceiling).
- **one model per task** (the task router): the chosen model's logged run.
- **step-aware, restart rule**: the cheap model's run is read step by step. Before each of its model
  calls the policy sees only the prefix so far, through the live code path: the prompt and the run's
  messages become a `ChatRequest`, `context_from_messages` reads the `StepContext` from them, and
  `route_input` computes the signals and candidates a `Router` would hand its policy, over a registry
  of the two models (cheap tier 1, strong tier 2). A decision above tier 1 at step k is a hand-over:
  the task costs the cheap run's first k steps plus the strong run's whole cost, and succeeds as the
  strong run did. The cheap model's progress is thrown away, so this is exact and pessimistic.

Each task's prefixes are built once (`StepPrefixes`) and shared by every policy replayed over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._context import StepContext
from .._messages import _TOOL_NAME, ChatRequest, Message, ToolSpec
from .._models import ModelPrices, ModelRegistry, ModelSpec
from ..datasets import AgentRuns, AgentTask
from ..policies import Policy, RouteInput
from ..routing._decide import route_input
from ..signals._run_context import context_from_messages

__all__ = [
    "PolicyReplay",
    "StepPrefixes",
    "replay_fixed",
    "replay_oracle",
    "replay_steps",
    "replay_task_choice",
]

BOOTSTRAP_SAMPLES = 1000
"""Resamples of the tasks behind every 95% interval."""


def replay_registry(runs: AgentRuns, prices: dict[str, ModelPrices] | None = None) -> ModelRegistry:
    """The two models as a registry: the cheap one tier 1, the strong one tier 2 (prices: estimates only)."""
    known = prices or {}
    zero = ModelPrices(input=0.0, output=0.0)
    return ModelRegistry(
        ModelSpec(id=model, provider="replay", model=model, tier=tier, prices=known.get(model, zero))
        for tier, model in ((1, runs.weak), (2, runs.strong))
    )


def _tools(runs: AgentRuns) -> tuple[ToolSpec, ...]:
    # The tables do not record tool definitions; an agent sends the same tools on every call, so each
    # request offers every tool the table's runs call (schemas never push a request up a tier).
    names = sorted(
        {
            call.name
            for task in runs.tasks
            for run in (task.weak, task.strong)
            for m in run.run.chat
            for call in m.tool_calls
        }
    )
    return tuple(
        ToolSpec(name=name, description=f"The agent's {name} tool.")
        for name in names
        if _TOOL_NAME.match(name)
    )


class StepPrefixes:
    """For every task, the `RouteInput` of each of the cheap run's model calls, and of the opening prompt.

    `steps[i][k]` is what a policy sees before the cheap model's step k on task i; `openings[i]` is
    the opening prompt alone (the input of a task router). Built once, shared by all policies.
    """

    def __init__(self, runs: AgentRuns, registry: ModelRegistry | None = None) -> None:
        self.runs = runs
        self.registry = registry or replay_registry(runs)
        tools = _tools(runs)
        self.openings: list[RouteInput] = []
        self.steps: list[list[RouteInput]] = []
        for task in runs.tasks:
            self.openings.append(self._route(task, task.prompt, tools))
            chat = task.weak.run.chat
            self.steps.append(
                [self._route(task, (*task.prompt, *chat[:index]), tools) for index in task.weak.run.steps]
            )

    def subset(self, indices: Sequence[int]) -> StepPrefixes:
        """The prefixes of the tasks at `indices` (shared, not rebuilt), over `runs.subset(indices)`."""
        part = object.__new__(StepPrefixes)
        part.runs = self.runs.subset(indices)
        part.registry = self.registry
        part.openings = [self.openings[i] for i in indices]
        part.steps = [self.steps[i] for i in indices]
        return part

    def _route(self, task: AgentTask, messages: Sequence[Message], tools: tuple[ToolSpec, ...]) -> RouteInput:
        request = ChatRequest(tuple(messages), tools=tools)
        context: StepContext = context_from_messages(request.messages, has_tools=bool(tools), run_id=task.id)
        return route_input(self.registry, request, context)


@dataclass(frozen=True, slots=True)
class PolicyReplay:
    """What one policy did over the tasks: per task its success, its cost and whether the strong model ran.

    `handover_steps[i]` is the cheap run's step at which the task moved to the strong model (0: from
    the start), or -1 when it never did. `curve`, for a thresholded policy, is its (cost per task,
    success) at each threshold.
    """

    name: str
    success: np.ndarray
    cost: np.ndarray
    handover_steps: np.ndarray
    curve: tuple[tuple[float, float], ...] | None = None

    @property
    def success_rate(self) -> float:
        """Mean task success."""
        return float(self.success.mean())

    @property
    def cost_per_task(self) -> float:
        """Mean cost of a task in dollars."""
        return float(self.cost.mean())

    @property
    def cost_per_success(self) -> float | None:
        """Total cost over total success (None when nothing succeeded)."""
        won = float(self.success.sum())
        return float(self.cost.sum()) / won if won > 0 else None

    @property
    def handover_rate(self) -> float:
        """Share of tasks on which the strong model ran."""
        return float((self.handover_steps >= 0).mean())

    def intervals(
        self, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """95% bootstrap intervals over tasks for (success, cost per task)."""
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(self.success), size=(samples, len(self.success)))
        success = self.success[picks].mean(axis=1)
        cost = self.cost[picks].mean(axis=1)
        lo, hi = 2.5, 97.5
        return (
            (float(np.percentile(success, lo)), float(np.percentile(success, hi))),
            (float(np.percentile(cost, lo)), float(np.percentile(cost, hi))),
        )


def _outcome(task: AgentTask, step: int) -> tuple[float, float]:
    """(success, cost) of a task handed over before the cheap run's `step` (-1: never)."""
    if step < 0:
        return task.weak.score, task.weak.cost_usd
    return task.strong.score, task.weak.cost_before(step) + task.strong.cost_usd


def replay_handovers(
    name: str, runs: AgentRuns, steps: Sequence[int], curve: tuple[tuple[float, float], ...] | None = None
) -> PolicyReplay:
    """The replay of hand-over steps, one per task (-1: the cheap run was kept)."""
    pairs = [_outcome(task, step) for task, step in zip(runs.tasks, steps, strict=True)]
    return PolicyReplay(
        name,
        np.array([p[0] for p in pairs], dtype=np.float64),
        np.array([p[1] for p in pairs], dtype=np.float64),
        np.asarray(steps, dtype=np.int64),
        curve,
    )


def replay_fixed(runs: AgentRuns, strong: bool) -> PolicyReplay:
    """always-strong (`strong`) or always-weak: the logged runs as they are."""
    return replay_handovers(
        "always-strong" if strong else "always-weak", runs, [0 if strong else -1] * len(runs)
    )


def replay_oracle(runs: AgentRuns) -> PolicyReplay:
    """Per task, the cheapest model that did best: the cheap one unless the strong one scored higher."""
    return replay_handovers("oracle", runs, [0 if t.strong.score > t.weak.score else -1 for t in runs.tasks])


def replay_task_choice(
    name: str, runs: AgentRuns, strong: Sequence[bool], curve: tuple[tuple[float, float], ...] | None = None
) -> PolicyReplay:
    """One model per task, chosen before the run: the strong run where `strong[i]`, else the cheap one."""
    return replay_handovers(name, runs, [0 if s else -1 for s in strong], curve)


def first_handover(routes: Sequence[RouteInput], policy: Policy) -> int:
    """The first step whose decision's tier is above the lowest candidate's, or -1."""
    for step, route in enumerate(routes):
        if policy.decide(route).tier > route.candidates[0].tier:
            return step
    return -1


def replay_steps(name: str, prefixes: StepPrefixes, policies: Sequence[Policy] | Policy) -> PolicyReplay:
    """Replay a step-aware policy over the cheap runs (restart rule); one policy per task, or one for all."""
    runs = prefixes.runs
    chosen = [policies] * len(runs) if not isinstance(policies, Sequence) else list(policies)
    steps = [first_handover(routes, policy) for routes, policy in zip(prefixes.steps, chosen, strict=True)]
    return replay_handovers(name, runs, steps)


def handover_steps(risks: Sequence[np.ndarray], threshold: float) -> list[int]:
    """Per task, the first step whose risk is above `threshold` (-1: none): where a threshold hands over."""
    steps = []
    for r in risks:
        above = np.flatnonzero(r > threshold)
        steps.append(int(above[0]) if above.size else -1)
    return steps
