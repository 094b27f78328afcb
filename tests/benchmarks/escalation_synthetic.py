"""The learned escalation on a synthetic agent table unlike the bundled one: longer runs, more tool errors.

    uv run python tests/benchmarks/escalation_synthetic.py [--json] [--tasks 300] [--seed 0] [--write FILE]

A generalisation check that needs no data beyond this repository. A script draws agent runs whose
profile differs from tau-bench retail's on purpose: each task has a hidden difficulty; the cheap
model fails more often on harder tasks, and its failing runs are longer and show more tool errors and
repeated calls (but not always, and clean runs have some too); the strong model fails only on the
hardest. The opening prompts carry no hint of difficulty (the task prior can only add noise), and the
final replies say "unable" on only some failing runs. Every constant below is a round number written
once, before any figure was read; none was changed after.

Two replays: 5-fold cross-fitting on the synthetic table alone, and transfer, every learned part
trained on the bundled tau-bench runs and replayed on the synthetic table (`eval-agents --train
tau-retail --data FILE`). Per replay: the learned escalation's and the hand-set scorer's success and
cost per task as shares of always-strong's, the best success within 50% and 35% of always-strong's
cost along the curves, and the gap to the task router's curve. `--write FILE` keeps the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from agent_replay import best_success_within, mean_gap

from gearshift.datasets import AgentRuns, load_agent_runs, load_tau_retail
from gearshift.evaluation._agent_eval import evaluate_agents

CHEAP_STEP_COST = 0.0004
STRONG_STEP_COST = 0.006


def _run(
    rng: np.random.Generator, steps: int, error: float, repeat: float, cost: float, last: str
) -> list[Any]:
    """Assistant turns calling tools (errors and repeated calls at the given rates), then `last`."""
    messages: list[dict[str, Any]] = []
    args = '{"item": 0}'
    for step in range(steps - 1):
        if rng.random() >= repeat:
            args = json.dumps({"item": int(rng.integers(1, 10_000))})
        call = f"call_{step}"
        failed = bool(rng.random() < error)
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call, "name": "lookup", "arguments": args}],
                "cost_usd": cost,
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call,
                "name": "lookup",
                "content": "Error: lookup failed" if failed else "ok: 3 records",
                "is_error": failed,
            }
        )
    messages.append({"role": "assistant", "content": last, "cost_usd": cost})
    return messages


def synthetic_rows(tasks: int, seed: int) -> list[dict[str, Any]]:
    """The synthetic agent table's rows (see the module docstring)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(tasks):
        difficulty = float(rng.random())
        cheap_ok = bool(rng.random() >= difficulty)
        strong_ok = bool(rng.random() >= difficulty**3)
        if cheap_ok:
            steps, error, repeat, last = 6 + int(rng.poisson(10)), 0.1, 0.05, "Done: the request is complete."
        else:
            steps, error, repeat = 6 + int(rng.poisson(18)), 0.3, 0.2
            last = "I am unable to complete this request." if rng.random() < 0.5 else "Done."
        cheap = _run(rng, steps, error, repeat, CHEAP_STEP_COST, last)
        strong = _run(rng, 4 + int(rng.poisson(8)), 0.05, 0.02, STRONG_STEP_COST, "Done.")
        words = " ".join(f"w{int(rng.integers(0, 500))}" for _ in range(12))
        rows.append(
            {
                "id": f"synthetic-{i}",
                "task": "synthetic",
                "prompt": [
                    {"role": "system", "content": "You are an operations agent with one lookup tool."},
                    {"role": "user", "content": f"Request {i}: {words}."},
                ],
                "outcomes": {
                    "cheap": {"score": float(cheap_ok), "messages": cheap},
                    "strong": {"score": float(strong_ok), "messages": strong},
                },
            }
        )
    return rows


def summary(runs: AgentRuns, train: AgentRuns | None, seed: int) -> dict[str, Any]:
    """The figures of one replay, relative to always-strong."""
    report = evaluate_agents(runs, train=train, seed=seed)
    strong = report.policies["always-strong"]
    success, cost = strong.success_rate, strong.cost_per_task
    router = report.policies["task-router"].curve or ()
    out: dict[str, Any] = {}
    for name in ("always-weak", "oracle", "task-router", "scorer-steps", "learned-escalation"):
        replay = report.policies[name]
        out[name] = {
            "success_vs_strong": round(replay.success_rate / success, 4),
            "cost_vs_strong": round(replay.cost_per_task / cost, 4),
        }
        if replay.curve is not None:
            out[name]["best_at_50"] = round(best_success_within(replay.curve, 0.5 * cost) / success, 4)
            out[name]["best_at_35"] = round(best_success_within(replay.curve, 0.35 * cost) / success, 4)
            out[name]["gap_vs_task_router"] = round(mean_gap(replay.curve, router, cost), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, metavar="FILE")
    args = parser.parse_args()
    rows = synthetic_rows(args.tasks, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = args.write or Path(folder) / "synthetic.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        runs = load_agent_runs(path)
    result = {
        "cross-fitted": summary(runs, None, args.seed),
        "trained on tau-retail": summary(runs, load_tau_retail(), args.seed),
    }
    for how, figures in result.items():
        for name, row in figures.items():
            curve = (
                f"; curve: best {row['best_at_50']:.0%} within 50% of its cost, {row['best_at_35']:.0%} "
                f"within 35%, gap vs task router {row['gap_vs_task_router']:+.3f}"
                if "best_at_50" in row
                else ""
            )
            print(
                f"{how:22s} {name:20s} {row['success_vs_strong']:.0%} of strong's success at "
                f"{row['cost_vs_strong']:.0%} of its cost{curve}"
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
