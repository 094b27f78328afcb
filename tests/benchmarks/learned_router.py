"""The learned router on the bundled RouteLLM data: cross-validated quality, training time, decision latency.

    uv run python tests/benchmarks/learned_router.py [--json] [--folds 5] [--seed 0]

1. Quality: K-fold cross-validation (`OutcomeTable.kfold(K, seed)`). For each fold a router is trained
   with `train_router(method="auto")` on the other folds alone (its own internal cross-validation
   runs inside those rows), then predicts the held-out fold. Sweeping the threshold on the predicted
   strong-minus-weak gain over all held-out predictions gives the strong-share/quality curve, scored
   with gearshift.evaluation's RouteLLM metrics: APGR, CPT(50%) and CPT(80%) (percent of calls to the
   strong model). Rows: GSM8K; MMLU with its source category (subject) as the task label
   (`load_routellm("mmlu", task_labels="category")`); MMLU with text alone (every task label "mmlu").
2. Training time: `train_router` on all 14,037 MMLU prompts (subject labels), wall seconds.
3. Decision latency: `LearnedPolicy.decide` on `RouteInput`s built exactly as `Router.decide` builds
   them (`route_input`), for 1,000 MMLU prompts: p50 and p99 in milliseconds; and the same for the
   whole pure decide step (`gearshift.routing._decide.decide`: signals, eligibility, then the policy).

Prints one line per figure, then (with --json) one JSON object last. Needs `gearshift[train]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from gearshift import ModelRegistry, StepContext
from gearshift._messages import ChatRequest
from gearshift.datasets import (
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    OutcomeTable,
    load_routellm,
    routellm_models,
)
from gearshift.evaluation import apgr, cpt
from gearshift.learning import LearnedPolicy, train_router
from gearshift.routing._decide import decide, route_input


def threshold_curve(gain: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strong-call share and mean quality at every threshold on the predicted gain (ties move together)."""
    order = np.argsort(-gain, kind="stable")
    sorted_gain = gain[order]
    cumulative = np.concatenate([[0.0], np.cumsum((strong - weak)[order])])
    # A threshold can only fall between distinct predictions: tied rows switch model together.
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_gain) != 0) + 1, [gain.size]])
    shares = cuts / gain.size
    quality = (weak.sum() + cumulative[cuts]) / gain.size
    return shares, quality


def cross_validate(table: OutcomeTable, folds: int, seed: int) -> dict[str, Any]:
    """Out-of-fold predicted gains of routers trained per fold, and the RouteLLM metrics over them."""
    position = {row.id: i for i, row in enumerate(table)}
    gain = np.empty(len(table))
    methods, seconds = [], []
    for train, held in table.kfold(folds, seed=seed):
        started = time.perf_counter()
        router = train_router(train, method="auto", seed=seed)
        seconds.append(time.perf_counter() - started)
        methods.append(router.training.method)
        predicted = router.predict(held.rows)
        weak, strong = router.models.index(ROUTELLM_WEAK_MODEL), router.models.index(ROUTELLM_STRONG_MODEL)
        gain[[position[row.id] for row in held]] = predicted[:, strong] - predicted[:, weak]
    weak_scores = np.array([row.outcomes[ROUTELLM_WEAK_MODEL].score for row in table])
    strong_scores = np.array([row.outcomes[ROUTELLM_STRONG_MODEL].score for row in table])
    shares, quality = threshold_curve(gain, weak_scores, strong_scores)
    ends = {"weak_quality": float(weak_scores.mean()), "strong_quality": float(strong_scores.mean())}
    return {
        "rows": len(table),
        "apgr": apgr(shares, quality, **ends),
        "cpt50": cpt(shares, quality, target=0.5, **ends),
        "cpt80": cpt(shares, quality, target=0.8, **ends),
        "methods": methods,
        "train_seconds_per_fold": round(float(np.mean(seconds)), 2),
    }


def latency(rows: int = 1000) -> dict[str, float]:
    """p50/p99 of the learned policy's decision, and of the whole pure decide step, in milliseconds."""
    table = load_routellm("mmlu", task_labels="category")
    train, held = table.kfold(5, seed=0)[0]
    router = train_router(train, method="auto")
    registry = ModelRegistry(routellm_models())
    policy = LearnedPolicy(router, registry=registry)
    sample = held.rows[:rows]
    requests = [ChatRequest(messages=row.as_messages()) for row in sample]
    contexts = [StepContext(metadata={"task": row.task}) for row in sample]
    routes = [route_input(registry, r, c) for r, c in zip(requests, contexts, strict=False)]
    for route in routes[:50]:  # warm caches (numpy, the policy's candidate slate)
        policy.decide(route)
    policy_times, full_times = [], []
    for route in routes:
        started = time.perf_counter()
        policy.decide(route)
        policy_times.append(time.perf_counter() - started)
    for request, context in zip(requests, contexts, strict=False):
        started = time.perf_counter()
        decide(registry, policy, request, context)
        full_times.append(time.perf_counter() - started)
    ms = 1e3
    return {
        "policy_p50_ms": float(np.percentile(policy_times, 50) * ms),
        "policy_p99_ms": float(np.percentile(policy_times, 99) * ms),
        "decide_p50_ms": float(np.percentile(full_times, 50) * ms),
        "decide_p99_ms": float(np.percentile(full_times, 99) * ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"folds": args.folds, "seed": args.seed}
    tables = {
        "gsm8k": load_routellm("gsm8k"),
        "mmlu": load_routellm("mmlu", task_labels="category"),
        "mmlu_text_only": load_routellm("mmlu"),
    }
    for name, table in tables.items():
        figures = cross_validate(table, args.folds, args.seed)
        results[name] = figures
        print(
            f"{name:15s} {args.folds}-fold CV on {figures['rows']:,} prompts: APGR {figures['apgr']:.3f}  "
            f"CPT(50%) {figures['cpt50']:.1f}%  CPT(80%) {figures['cpt80']:.1f}%  "
            f"(methods {', '.join(sorted(set(figures['methods'])))}; "
            f"{figures['train_seconds_per_fold']} s per fold)",
            flush=True,
        )
    started = time.perf_counter()
    router = train_router(tables["mmlu"], method="auto")
    results["mmlu_train_seconds"] = round(time.perf_counter() - started, 2)
    print(
        f"training on all {len(tables['mmlu']):,} MMLU prompts: {results['mmlu_train_seconds']} s "
        f"({router.training.method})"
    )
    results["latency"] = latency()
    lat = results["latency"]
    print(
        f"LearnedPolicy.decide: p50 {lat['policy_p50_ms']:.3f} ms, p99 {lat['policy_p99_ms']:.3f} ms; "
        f"whole decide step (signals + eligibility + policy): p50 {lat['decide_p50_ms']:.3f} ms, "
        f"p99 {lat['decide_p99_ms']:.3f} ms"
    )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
