"""Does the learned escalation hold on runs unlike the ones it was trained on? The bundled runs, split.

    uv run python tests/benchmarks/escalation_transfer.py [--json] [--seed 0]

The bundled tau-bench retail tasks (115, gpt-4o-mini -> gpt-4o) are split in two halves by a property,
at its median: the cheap model's run length in steps (the held-out half's runs are all longer, or all
shorter, than every training run: what feature clipping is for) and the opening request's length in
words (the task prior meets prompts unlike its training ones). Each way round, every learned part is
trained on one half and replayed on the other (`evaluate_agents(test, train=train)`, the path of
`gearshift eval-agents --train FILE --data FILE`). Nothing here is tuned: the figures are read off.

Per direction and policy: success and cost per task as shares of always-strong's on the replayed half,
the learned escalation's best success at <= 50% and <= 35% of always-strong's cost along its curve, and
the mean gap between its curve and the task router's (success at equal cost, over 5%-100% of
always-strong's cost; positive: above the task router). Prints one line per figure, then (with --json)
one JSON object last.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from agent_replay import best_success_within, mean_gap

from gearshift.datasets import AgentRuns, AgentTask, load_tau_retail
from gearshift.evaluation._agent_eval import evaluate_agents


def summary(runs: AgentRuns, train: AgentRuns, seed: int) -> dict[str, Any]:
    """Every policy on `runs`, learned parts trained on `train`, relative to always-strong."""
    report = evaluate_agents(runs, train=train, seed=seed)
    strong = report.policies["always-strong"]
    success, cost = strong.success_rate, strong.cost_per_task
    out: dict[str, Any] = {"tasks": len(runs), "trained_on": len(train)}
    for name, replay in report.policies.items():
        out[name] = {
            "success_vs_strong": round(replay.success_rate / success, 4),
            "cost_vs_strong": round(replay.cost_per_task / cost, 4),
        }
    router = report.policies["task-router"].curve or ()
    for name in ("task-router", "learned-escalation"):
        curve = report.policies[name].curve or ()
        out[name]["best_at_50"] = round(best_success_within(curve, 0.5 * cost) / success, 4)
        out[name]["best_at_35"] = round(best_success_within(curve, 0.35 * cost) / success, 4)
    escalation = report.policies["learned-escalation"].curve or ()
    out["learned-escalation"]["gap_vs_task_router"] = round(mean_gap(escalation, router, cost), 4)
    return out


def halves(runs: AgentRuns, key: Callable[[AgentTask], float]) -> tuple[AgentRuns, AgentRuns]:
    """(below or at the median of `key`, above it): ties go low, so neither half is empty."""
    values = np.array([key(task) for task in runs.tasks])
    low = np.flatnonzero(values <= np.median(values)).tolist()
    high = np.flatnonzero(values > np.median(values)).tolist()
    return runs.subset(low), runs.subset(high)


SPLITS: dict[str, Callable[[AgentTask], float]] = {
    "cheap run steps": lambda task: float(len(task.weak.run.steps)),
    "request words": lambda task: float(sum(len(m.text.split()) for m in task.prompt if m.role == "user")),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = load_tau_retail()
    result: dict[str, Any] = {}
    for split, key in SPLITS.items():
        low, high = halves(runs, key)
        for direction, (train, test) in (("low->high", (low, high)), ("high->low", (high, low))):
            figures = summary(test, train, args.seed)
            result[f"{split}: {direction}"] = figures
            escalation, router = figures["learned-escalation"], figures["task-router"]
            print(
                f"{split:16s} {direction:9s} trained on {figures['trained_on']}, "
                f"replayed on {figures['tasks']}: "
                f"learned-escalation {escalation['success_vs_strong']:.0%} of strong's success at "
                f"{escalation['cost_vs_strong']:.0%} of its cost, best {escalation['best_at_50']:.0%} "
                f"within 50% ({escalation['best_at_35']:.0%} within 35%), gap vs task router "
                f"{escalation['gap_vs_task_router']:+.3f}; task-router best {router['best_at_50']:.0%} "
                f"within 50%; scorer-steps {figures['scorer-steps']['success_vs_strong']:.0%} at "
                f"{figures['scorer-steps']['cost_vs_strong']:.0%}"
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
