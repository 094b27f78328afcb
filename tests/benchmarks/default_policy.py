"""The default policy and the scorer against a coin, on tables the default's estimate never saw.

    uv run python tests/benchmarks/default_policy.py [--json] [--table NAME ...] [--groups]

Tables: the three bundled RouteLLM tables, each scored leave-one-dataset-out (the default policy's
estimate trained again without the table scored; `gearshift eval --policy default` does the same), and
`commercial-routers`: MT-Bench answers of two commercial routers (Martian and Unify, from RouteLLM's
`mt_bench_commercial_routers`, judged by GPT-4, the two turns' scores averaged and scaled to [0, 1]),
read from /work/shared/data/routellm-evals when it is there. That table is the repository's proxy for
an unseen table: its "models" are not the bundled Mixtral and GPT-4, and its prompts are MT-Bench's, so
the estimate is trained without MT-Bench for it. `tau-retail` is the second never-seen table: the
115 bundled tau-bench retail tasks, each scored on its opening user request (what the default policy
reads of it: the user turn, with the system policy counted in the signals' size) by whether gpt-4o-mini
and gpt-4o completed the task; the shipped estimate never saw a tau-bench prompt. It is small (37 tasks
where the two models differ), so its coin spread is wide. APGR 0.50 is a coin; the target is >= 0.50
everywhere.

`--groups` adds MMLU's subjects as pseudo-unseen domains: for each of Hendrycks et al.'s four subject
groups (STEM, humanities, social sciences, other), the estimate is trained on every bundled prompt but
that group's and scored on the group. Each table's `coin_sd` is the spread of a random router's APGR on
it (200 random orders): how far from 0.50 chance alone moves a table of that size and gap.
The last line printed is one JSON object: {"tables": {NAME: {"rows", "excluded", "coin_sd", "policies":
{NAME: {"apgr", "strong_share", "decision_us_p50"}}}}, "groups": {NAME: {"rows", "coin_sd", "apgr"}},
"held_out": {"min", "mean", "count"}} (the default policy over every table and group scored).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable, load_routellm, load_tau_retail
from gearshift.evaluation import evaluate
from gearshift.evaluation._default_eval import DefaultRun, bundled_overlap
from gearshift.evaluation._metrics import apgr
from gearshift.evaluation._sweep import OutcomeMatrix
from gearshift.learning import DefaultPolicy
from gearshift.learning._default_training import train_default_router

DATA = Path("/work/shared/data/routellm-evals")
TABLES = ("gsm8k", "mmlu", "mt-bench", "commercial-routers", "tau-retail")
# MMLU's subjects by the four groups of Hendrycks et al. (2021), the benchmark's own categories.
MMLU_GROUPS: dict[str, list[str]] = {
    "stem": [
        "abstract_algebra",
        "astronomy",
        "college_biology",
        "college_chemistry",
        "college_computer_science",
        "college_mathematics",
        "college_physics",
        "computer_security",
        "conceptual_physics",
        "electrical_engineering",
        "elementary_mathematics",
        "high_school_biology",
        "high_school_chemistry",
        "high_school_computer_science",
        "high_school_mathematics",
        "high_school_physics",
        "high_school_statistics",
        "machine_learning",
    ],
    "humanities": [
        "formal_logic",
        "high_school_european_history",
        "high_school_us_history",
        "high_school_world_history",
        "international_law",
        "jurisprudence",
        "logical_fallacies",
        "moral_disputes",
        "moral_scenarios",
        "philosophy",
        "prehistory",
        "professional_law",
        "world_religions",
    ],
    "social-sciences": [
        "econometrics",
        "high_school_geography",
        "high_school_government_and_politics",
        "high_school_macroeconomics",
        "high_school_microeconomics",
        "high_school_psychology",
        "human_sexuality",
        "professional_psychology",
        "public_relations",
        "security_studies",
        "sociology",
        "us_foreign_policy",
    ],
    "other": [
        "anatomy",
        "business_ethics",
        "clinical_knowledge",
        "college_medicine",
        "global_facts",
        "human_aging",
        "management",
        "marketing",
        "medical_genetics",
        "miscellaneous",
        "nutrition",
        "professional_accounting",
        "professional_medicine",
        "virology",
    ],
}


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


def coin_sd(table: OutcomeTable, draws: int = 200) -> float:
    """The standard deviation of a random router's APGR on `table` (random orders of its rows)."""
    matrix = OutcomeMatrix.from_table(table)
    weak, strong = matrix.scores[:, 0], matrix.scores[:, matrix.strong]
    rng = np.random.default_rng(0)
    shares = np.arange(matrix.rows + 1) / matrix.rows
    values = []
    for _ in range(draws):
        gained = np.concatenate(([0.0], np.cumsum((strong - weak)[rng.permutation(matrix.rows)])))
        quality = (weak.sum() + gained) / matrix.rows
        value = apgr(shares, quality, weak_quality=float(weak.mean()), strong_quality=float(strong.mean()))
        if value is not None:
            values.append(value)
    return float(np.std(values))


def mmlu_group(group: str) -> tuple[OutcomeTable, list[str]]:
    """MMLU's rows of one subject group, and the categories to train without."""
    held = [f"mmlu/{subject}" for subject in MMLU_GROUPS[group]]
    table = load_routellm("mmlu", task_labels="category")
    return OutcomeTable([row for row in table if row.task in held]), held


def group_figures(group: str) -> dict[str, Any]:
    """The default policy on one MMLU subject group, its estimate trained without that group."""
    table, held = mmlu_group(group)
    matrix = OutcomeMatrix.from_table(table)
    run = DefaultRun(table, matrix, DefaultPolicy(train_default_router(exclude=held)), held)
    quality = matrix.mean_scores
    value = apgr(
        run.curve.strong_shares,
        run.curve.qualities,
        weak_quality=float(quality[0]),
        strong_quality=float(quality[matrix.strong]),
    )
    return {"rows": len(table), "coin_sd": round(coin_sd(table), 4), "apgr": round(value or 0.0, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="append", choices=TABLES)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--groups", action="store_true", help="also hold out each MMLU subject group")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    held_out: list[float] = []
    never_seen = {"commercial-routers": commercial_routers, "tau-retail": lambda: load_tau_retail().table}
    for name in args.table or TABLES:
        table = never_seen[name]() if name in never_seen else load_routellm(name)
        report = evaluate(table, policies=("default", "scorer"))
        figures[name] = {
            "rows": report.rows,
            "excluded": list(bundled_overlap(table)),
            "coin_sd": round(coin_sd(table), 4),
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
        held_out.append(figures[name]["policies"]["default"]["apgr"])
        if not args.json:
            shown = ", ".join(f"{p} {v['apgr']}" for p, v in figures[name]["policies"].items())
            print(
                f"{name} ({report.rows} rows, trained without {figures[name]['excluded']}, "
                f"coin sd {figures[name]['coin_sd']}): APGR {shown}"
            )
    groups: dict[str, Any] = {}
    for group in MMLU_GROUPS if args.groups else ():
        groups[group] = group_figures(group)
        held_out.append(groups[group]["apgr"])
        if not args.json:
            print(
                f"mmlu:{group} held out ({groups[group]['rows']} rows, coin sd {groups[group]['coin_sd']}): "
                f"default APGR {groups[group]['apgr']}"
            )
    summary = {"min": min(held_out), "mean": round(statistics.fmean(held_out), 4), "count": len(held_out)}
    if not args.json:
        print(
            f"default policy over {summary['count']} held-out tables and groups: min {summary['min']}, "
            f"mean {summary['mean']}"
        )
    print(json.dumps({"tables": figures, "groups": groups, "held_out": summary}))


if __name__ == "__main__":
    main()
