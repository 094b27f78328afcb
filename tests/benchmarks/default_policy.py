"""The default policy and the scorer against a coin, on tables the default's estimate never saw.

    uv run python tests/benchmarks/default_policy.py [--json] [--table NAME ...]

Tables: the three bundled RouteLLM tables, each scored leave-one-dataset-out (the default policy's
estimate trained again without the table scored; `gearshift eval --policy default` does the same), and
`commercial-routers`: MT-Bench answers of two commercial routers (Martian and Unify, from RouteLLM's
`mt_bench_commercial_routers`, judged by GPT-4, the two turns' scores averaged and scaled to [0, 1]),
read from /work/shared/data/routellm-evals when it is there. That table is the repository's proxy for
an unseen table: its "models" are not the bundled Mixtral and GPT-4, and its prompts are MT-Bench's, so
the estimate is trained without MT-Bench for it. APGR 0.50 is a coin; the target is >= 0.50 everywhere.
The last line printed is one JSON object: {"tables": {NAME: {"rows", "excluded", "policies":
{NAME: {"apgr", "strong_share", "decision_us_p50"}}}}}.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable, load_routellm
from gearshift.evaluation import evaluate
from gearshift.evaluation._default_eval import bundled_overlap

DATA = Path("/work/shared/data/routellm-evals")
TABLES = ("gsm8k", "mmlu", "mt-bench", "commercial-routers")


def commercial_routers(root: Path = DATA) -> OutcomeTable:
    """Martian's and Unify's MT-Bench answers as an outcome table, the lower-scoring router first."""
    questions = {}
    with (root / "mt_bench" / "question.jsonl").open() as lines:
        for line in lines:
            item = json.loads(line)
            questions[item["question_id"]] = item["turns"][0]
    scores: dict[tuple[int, str], list[float]] = defaultdict(list)
    with (root / "mt_bench_commercial_routers" / "gpt-4_single.jsonl").open() as lines:
        for line in lines:
            item = json.loads(line)
            if item["score"] >= 0:  # -1: the judge gave no score
                scores[(item["question_id"], item["model"])].append(item["score"] / 10)
    routers = sorted({model for _, model in scores})
    means = {
        r: statistics.fmean(statistics.fmean(v) for (_, m), v in scores.items() if m == r) for r in routers
    }
    routers.sort(key=means.__getitem__)
    rows = [
        OutcomeRow(
            f"commercial-{qid}",
            "mt-bench-commercial",
            questions[qid],
            {r: Outcome(statistics.fmean(scores[(qid, r)])) for r in routers},
        )
        for qid in sorted(questions)
        if all(scores.get((qid, r)) for r in routers)
    ]
    return OutcomeTable(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="append", choices=TABLES)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for name in args.table or TABLES:
        table = commercial_routers() if name == "commercial-routers" else load_routellm(name)
        report = evaluate(table, policies=("default", "scorer"))
        figures[name] = {
            "rows": report.rows,
            "excluded": list(bundled_overlap(table)),
            "policies": {
                policy: {
                    "apgr": None if result.apgr is None else round(result.apgr, 4),
                    "strong_share": None if result.strong_share is None else round(result.strong_share, 4),
                    "decision_us_p50": None if result.latency is None else round(result.latency.median_us, 1),
                }
                for policy, result in report.policies.items()
                if policy in ("default", "scorer", "length", "random")
            },
        }
        if not args.json:
            shown = ", ".join(f"{p} {v['apgr']}" for p, v in figures[name]["policies"].items())
            print(f"{name} ({report.rows} rows, trained without {figures[name]['excluded']}): APGR {shown}")
    print(json.dumps({"tables": figures}))


if __name__ == "__main__":
    main()
