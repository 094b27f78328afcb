"""`gearshift eval` figures on the bundled tables: every policy, 5-fold cross-validation.

    uv run python tests/benchmarks/eval_bundled.py [--json] [--dataset gsm8k --dataset mmlu]
                                                   [--policy NAME ...] [--folds 5] [--seed 0]

For each dataset it runs `gearshift.evaluation.evaluate` (the code behind `gearshift eval`) with every
policy (learned, knn, linear, scorer, length) plus the baselines, prints the table `gearshift eval`
prints, and times the whole evaluation (load excluded). The last line printed is one JSON object:
{"datasets": {NAME: {"rows", "seconds", "load_seconds", "policies": {NAME: {apgr, cpt50, cpt80, aiq,
quality, cost, strong_share, cost_for_95, above_models, latency_us}}}}}, curves left out.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gearshift._finite_numbers import finite
from gearshift.datasets import load_routellm
from gearshift.evaluation import POLICIES, evaluate
from gearshift.evaluation._cli import _print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", action="append", choices=["gsm8k", "mmlu", "mt-bench"])
    parser.add_argument("--policy", action="append", choices=POLICIES)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for name in args.dataset or ["gsm8k", "mmlu"]:
        started = time.perf_counter()
        table = load_routellm(name)
        loaded = time.perf_counter() - started
        report = evaluate(table, policies=tuple(args.policy or POLICIES), folds=args.folds, seed=args.seed)
        _print_table(report, name)
        figures[name] = {
            "rows": report.rows,
            "folds": report.folds,
            "seconds": round(report.seconds, 3),
            "load_seconds": round(loaded, 3),
            "policies": {
                policy: {k: v for k, v in result.to_dict().items() if k != "curve"}
                | {"curve_points": len(result.curve)}
                for policy, result in report.policies.items()
            },
        }
    if args.json:
        print(json.dumps(finite({"datasets": figures})))


if __name__ == "__main__":
    main()
