"""Step-aware routing on logged agent runs: replay speed, escalation decision latency, held-out figures.

    uv run python tests/benchmarks/agent_replay.py [--json] [--folds 5] [--seed 0] [--tasks 600]

1. Figures on the bundled tau-bench retail runs (115 tasks, gpt-4o-mini -> gpt-4o), every policy
   cross-fitted by task (`evaluate_agents`, `--folds` folds): success, cost per task, cost per finished
   task, hand-over rate, 95% bootstrap intervals over tasks, and the success and cost relative to
   always-strong; which success intervals overlap always-strong's.
2. Replay speed: `--tasks` tasks (the bundled 115 repeated under new ids) x 2 models through every
   policy, cross-fitted, wall seconds (target: 600 tasks under 60 s).
3. Decision latency: `EscalationPolicy.decide` (the cheapest model as base, the model trained on all
   bundled runs) on the `RouteInput` of every step of the bundled cheap runs, p50 and p99 in ms; the
   whole pure decide step (`route_input` then the policy), as a live `Router.decide` runs it; and the
   live escalation step a `Router(..., escalation=...)` adds to each call (`LiveEscalation.policy_for`
   with the run's floor, the decision, `remember`), each task's steps under its own run id.

Self-disagreement (two runs of one model on the same task) is printed where the data holds repeated
trials; the bundled data holds one trial per model and task. Prints one line per figure, then (with
--json) one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from gearshift.datasets import AgentRuns, OutcomeRow, OutcomeTable, load_tau_retail
from gearshift.escalation import CheapestPolicy, EscalationPolicy, LiveEscalation, train_escalation
from gearshift.evaluation._agent_eval import evaluate_agents, self_disagreement
from gearshift.evaluation._agent_replay import StepPrefixes
from gearshift.policies import RouteInput
from gearshift.routing._decide import route_input

Curve = Sequence[Sequence[float]]


def best_success_within(curve: Curve, cost: float) -> float:
    """The highest success along `curve` at a cost per task of at most `cost` (0 when none is)."""
    return max((s for c, s in curve if c <= cost + 1e-12), default=0.0)


def mean_gap(curve: Curve, reference: Curve, strong_cost: float) -> float:
    """Mean over 5%-100% of always-strong's cost of (best success within the cost) on `curve` minus
    on `reference`."""
    grid = np.linspace(0.05, 1.0, 40) * strong_cost
    return float(np.mean([best_success_within(curve, x) - best_success_within(reference, x) for x in grid]))


def figures(runs: AgentRuns, folds: int, seed: int) -> dict[str, Any]:
    """Every policy's held-out figures on `runs`."""
    report = evaluate_agents(runs, folds=folds, seed=seed)
    strong = report.policies["always-strong"]
    router = report.policies["task-router"].curve or ()
    (strong_lo, strong_hi), _ = strong.intervals()
    out: dict[str, Any] = {}
    for name, replay in report.policies.items():
        (s_lo, s_hi), (c_lo, c_hi) = replay.intervals()
        out[name] = {
            "success": round(replay.success_rate, 4),
            "success_ci": [round(s_lo, 4), round(s_hi, 4)],
            "cost_per_task": round(replay.cost_per_task, 5),
            "cost_ci": [round(c_lo, 5), round(c_hi, 5)],
            "cost_per_success": None
            if replay.cost_per_success is None
            else round(replay.cost_per_success, 5),
            "handover_rate": round(replay.handover_rate, 4),
            "success_vs_strong": round(replay.success_rate / strong.success_rate, 4),
            "cost_vs_strong": round(replay.cost_per_task / strong.cost_per_task, 4),
            "overlaps_strong": bool(s_hi >= strong_lo and s_lo <= strong_hi),
        }
        if replay.curve is not None:
            for share in (50, 35):
                best = best_success_within(replay.curve, share / 100 * strong.cost_per_task)
                out[name][f"best_within_{share}"] = round(best / strong.success_rate, 4)
            out[name]["gap_vs_task_router"] = round(mean_gap(replay.curve, router, strong.cost_per_task), 4)
    return out


def repeated(runs: AgentRuns, tasks: int) -> AgentRuns:
    """`tasks` tasks: the bundled ones again and again, each copy under a new id."""
    picks = [i % len(runs) for i in range(tasks)]
    rows = [runs.table[i] for i in picks]
    table = OutcomeTable(
        OutcomeRow(f"{row.id}-{n}", row.task, row.prompt, row.outcomes) for n, row in enumerate(rows)
    )
    copies = tuple(
        type(runs.tasks[i])(
            f"{runs.tasks[i].id}-{n}", runs.tasks[i].prompt, runs.tasks[i].weak, runs.tasks[i].strong
        )
        for n, i in enumerate(picks)
    )
    return AgentRuns(table, runs.weak, runs.strong, copies, runs.notes, runs.source)


def replay_speed(runs: AgentRuns, tasks: int, folds: int, seed: int) -> dict[str, Any]:
    """Wall seconds to replay `tasks` tasks through every policy, cross-fitted."""
    big = repeated(runs, tasks)
    started = time.perf_counter()
    evaluate_agents(big, folds=folds, seed=seed)
    return {"tasks": tasks, "runs": 2 * tasks, "seconds": round(time.perf_counter() - started, 2)}


def latency(runs: AgentRuns) -> dict[str, Any]:
    """p50/p99 of the escalation decision alone and of the whole pure decide step, in ms; and, with the
    task prior forced on, of the decision at a run's first step (where the prior is computed) and at
    every step."""
    prefixes = StepPrefixes(runs)
    model = train_escalation(runs, prefixes=prefixes)
    policy = EscalationPolicy(CheapestPolicy(), model)
    with_prior = EscalationPolicy(CheapestPolicy(), train_escalation(runs, prefixes=prefixes, prior=True))
    first, every = [], []
    for steps in prefixes.steps:
        for index, route in enumerate(steps):
            started = time.perf_counter()
            with_prior.decide(route)
            (first if index == 0 else every).append(time.perf_counter() - started)
    every += first
    routes = [route for steps in prefixes.steps for route in steps]
    alone = []
    for route in routes:
        started = time.perf_counter()
        policy.decide(route)
        alone.append(time.perf_counter() - started)
    whole = []
    for route in routes[::4]:
        started = time.perf_counter()
        policy.decide(route_input(prefixes.registry, route.request, route.context))
        whole.append(time.perf_counter() - started)
    steps = [
        replace(route, context=replace(route.context, run_id=task.id))
        for task, routes in zip(runs.tasks, prefixes.steps, strict=True)
        for route in routes
    ]
    # Sticky, a held run's later steps skip the risk (the top tier is reached); not sticky, none does.
    live, held = _live_steps(LiveEscalation(model), steps)
    _, unheld = _live_steps(LiveEscalation(model, sticky=False), steps)
    ms = 1000.0
    return {
        "steps": len(routes),
        "policy_p50_ms": round(float(np.percentile(alone, 50)) * ms, 4),
        "policy_p99_ms": round(float(np.percentile(alone, 99)) * ms, 4),
        "decide_p50_ms": round(float(np.percentile(whole, 50)) * ms, 4),
        "decide_p99_ms": round(float(np.percentile(whole, 99)) * ms, 4),
        "live_p50_ms": round(float(np.percentile(held, 50)) * ms, 4),
        "live_p99_ms": round(float(np.percentile(held, 99)) * ms, 4),
        "live_runs_held": live.runs_held,
        "live_unsticky_p50_ms": round(float(np.percentile(unheld, 50)) * ms, 4),
        "live_unsticky_p99_ms": round(float(np.percentile(unheld, 99)) * ms, 4),
        "prior_first_step_p50_ms": round(float(np.percentile(first, 50)) * ms, 4),
        "prior_p50_ms": round(float(np.percentile(every, 50)) * ms, 4),
        "prior_p99_ms": round(float(np.percentile(every, 99)) * ms, 4),
    }


def _live_steps(live: LiveEscalation, steps: list[RouteInput]) -> tuple[LiveEscalation, list[float]]:
    """Seconds of the escalation a live router adds to each step: its policy, the decision, `remember`."""
    base = CheapestPolicy()
    seconds = []
    for route in steps:
        started = time.perf_counter()
        live.remember(route.context, live.policy_for(base, route.context).decide(route))
        seconds.append(time.perf_counter() - started)
    return live, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=600)
    args = parser.parse_args()
    runs = load_tau_retail()
    result: dict[str, Any] = {"bundled": figures(runs, args.folds, args.seed)}
    for name, row in result["bundled"].items():
        print(
            f"{name:24s} success {row['success']:.3f} {row['success_ci']}  "
            f"cost/task ${row['cost_per_task']:.4f} "
            f"{row['cost_ci']}  hand-over {row['handover_rate']:.0%}  = {row['success_vs_strong']:.0%} of "
            f"strong's success at {row['cost_vs_strong']:.0%} of its cost"
            + (
                "  (interval overlaps always-strong's)"
                if row["overlaps_strong"] and name != "always-strong"
                else ""
            )
            + (
                f"  curve: best {row['best_within_50']:.0%} of strong's success within 50% of its cost, "
                f"{row['best_within_35']:.0%} within 35%, gap vs task router {row['gap_vs_task_router']:+.3f}"
                if "best_within_50" in row
                else ""
            )
        )
    result["replay"] = replay_speed(runs, args.tasks, args.folds, args.seed)
    print(
        f"replay: {result['replay']['tasks']} tasks x 2 models, every policy: {result['replay']['seconds']} s"
    )
    result["latency"] = latency(runs)
    lat = result["latency"]
    print(
        f"escalation decision on {lat['steps']} steps: p50 {lat['policy_p50_ms']} ms, "
        f"p99 {lat['policy_p99_ms']} ms; "
        f"whole decide step p50 {lat['decide_p50_ms']} ms, p99 {lat['decide_p99_ms']} ms; "
        f"live escalation step (run floors kept) p50 {lat['live_p50_ms']} ms, p99 {lat['live_p99_ms']} ms "
        f"({lat['live_runs_held']} runs handed up and held), "
        f"not sticky p50 {lat['live_unsticky_p50_ms']} ms, p99 {lat['live_unsticky_p99_ms']} ms"
    )
    print(
        f"with the task prior: p50 {lat['prior_p50_ms']} ms, p99 {lat['prior_p99_ms']} ms; at a run's "
        f"first step (the prior computed) p50 {lat['prior_first_step_p50_ms']} ms"
    )
    agree = self_disagreement(runs)  # None: one trial per model and task, nothing to compare
    result["self_disagreement"] = None if agree is None else asdict(agree)
    print(
        "self-disagreement: not measurable, one trial per model and task"
        if agree is None
        else f"self-disagreement over {agree.tasks} repeated tasks: "
        f"weak {agree.weak:.0%}, strong {agree.strong:.0%}"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
