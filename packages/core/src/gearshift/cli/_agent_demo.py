"""The agent part of `gearshift demo`: the bundled tau-bench retail runs replayed, in a few seconds.

Always-strong, always-weak, and gearshift's step-aware routing: the hand-set scorer (its step biases
and escalation triggers, the default policy) and the learned escalation (5-fold cross-fitted by task,
so no task is routed by a model that saw it), each as success and cost per finished task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["agent_demo", "print_agent_demo"]


def agent_demo(on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Replay the bundled agent runs; per policy its success, cost per task and per finished task.

    `on_progress(done, total)` follows the replay's stages (see `evaluate_agents`).
    """
    from ..datasets import load_tau_retail
    from ..evaluation._agent_eval import evaluate_agents

    runs = load_tau_retail()
    report = evaluate_agents(
        runs,
        policies=("scorer-steps", "learned-escalation"),
        with_task_router=False,
        on_progress=on_progress,
    )
    rows = {}
    for name in ("always-strong", "always-weak", "scorer-steps", "learned-escalation"):
        replay = report.policies[name]
        rows[name] = {
            "success": replay.success_rate,
            "cost_per_task": replay.cost_per_task,
            "cost_per_success": replay.cost_per_success,
            "handover_rate": replay.handover_rate,
        }
    return {"tasks": len(runs), "weak": runs.weak, "strong": runs.strong, "policies": rows}


def print_agent_demo(result: dict[str, Any], console: Console) -> None:
    """Print `agent_demo`'s figures as a table on `console`."""
    from rich.table import Table

    table = Table(
        title=f"gearshift demo: {result['tasks']} logged agent tasks (tau-bench retail), "
        f"{result['weak']} -> {result['strong']}"
    )
    for column in ("policy", "task success", "cost per task", "cost per finished task", "hand-over"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    labels = {
        "always-strong": f"always {result['strong']}",
        "always-weak": f"always {result['weak']}",
        "scorer-steps": "gearshift, step-aware scorer (hand-set)",
        "learned-escalation": "gearshift, learned escalation (held out)",
    }
    for name, row in result["policies"].items():
        per = row["cost_per_success"]
        table.add_row(
            labels[name],
            f"{row['success']:.1%}",
            f"${row['cost_per_task']:.4f}",
            "-" if per is None else f"${per:.4f}",
            f"{row['handover_rate']:.0%}",
        )
    console.print(table)
    console.print(
        "Replayed step by step with the restart rule (a hand-over at step k pays the cheap run's first k "
        "steps plus the strong run). Tokens are estimated from the logged text and priced at list prices "
        "(gearshift/datasets/tau_bench_retail/PROVENANCE.md). `gearshift eval-agents --dataset tau-retail` "
        "adds the task router, the oracle and 95% intervals."
    )
