"""Cascades on the bundled RouteLLM data: quality, cost and escalation rate of each gate, offline.

    uv run python tests/benchmarks/cascade_offline.py [--json] [--folds 5] [--seed 0]

Every GSM8K prompt goes through the real `Router` with a `ReplayProvider`: Mixtral-8x7B answers first
with its recorded answer, the gate judges that answer, and a rejected one is handed to GPT-4 Turbo,
whose recorded answer is returned (`gearshift.evaluation.run_cascade_offline`). Quality is the recorded
score of the answer returned, cost every attempt's recorded cost at list prices.

Five-fold cross-validation: the learned answer judge is trained on the weak model's recorded answers
of four folds and gates the fifth; figures are summed over the five held-out folds. The gates'
thresholds are fixed in advance (0.5, and 0.6 / 0.7 for the trade-off), never tuned on a test fold.
Gates compared:

- `heuristic`: the default checks (empty, refusal, hedging; JSON and tool checks do not apply);
- `heuristic+final`: plus "the answer must mark a final number" (GSM8K answers end in `#### N`);
- `heuristic+arithmetic`: plus "every equation the answer shows holds" (`check_arithmetic`);
- `heuristic+final+arithmetic`: both math checks;
- `learned@t`: the learned judge alone, accepting P(good) >= t;
- `heuristic+final+arithmetic+learned@t`: the math heuristic, then the judge; every gate must pass;
- `oracle`: escalates exactly the answers that scored 0, the best any gate could do.

`PGR` is the share of the weak-to-strong quality gap closed; a gate that escalates at random closes
about as much of the gap as its escalation rate, so PGR above the escalation rate is what a gate adds.
MMLU is checked and skipped: it records no answers (RouteLLM generated one answer letter and kept
only whether it was right), so there is nothing for a gate to read. MT-Bench (72 prompts) is run with
the default heuristic gate only: too few answers to train a judge on, and its open questions have
no final number to look for.
The learned judge's held-out AUC (also for a judge trained on both models' answers, which
`AnswerJudge.train`'s advice rests on) and the time of one prediction (what the gate adds to a call) are
printed too. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from gearshift.cascades import (
    DEFAULT_CHECKS,
    AnswerCheck,
    AnswerJudge,
    Cascade,
    FinalAnswerCheck,
    HeuristicGate,
    LearnedJudgeGate,
    QualityGate,
    Verdict,
    check_arithmetic,
)
from gearshift.datasets import OutcomeTable, load_routellm, routellm_models
from gearshift.evaluation import CascadeReport, run_cascade_offline

WEAK, STRONG = routellm_models()
THRESHOLDS = (0.5, 0.6, 0.7)


class OracleGate:
    """Escalates exactly the answers the table records as wrong (a bound, not a usable gate)."""

    name = "oracle"

    async def check(self, answer: AnswerCheck) -> Verdict:
        good = float(answer.response.metadata["score"]) >= 0.5
        return Verdict(good, self.name, "" if good else "recorded as wrong")


@dataclass
class Totals:
    """Figures summed over folds."""

    requests: int = 0
    quality_sum: float = 0.0
    cost: float = 0.0
    escalated: int = 0
    weak_quality_sum: float = 0.0
    weak_cost: float = 0.0
    strong_quality_sum: float = 0.0
    strong_cost: float = 0.0

    def add(self, report: CascadeReport) -> None:
        self.requests += report.requests
        self.quality_sum += report.quality * report.requests
        self.cost += report.cost_usd
        self.escalated += report.escalated
        self.weak_quality_sum += report.weak_quality * report.requests
        self.weak_cost += report.weak_cost_usd
        self.strong_quality_sum += report.strong_quality * report.requests
        self.strong_cost += report.strong_cost_usd

    def figures(self) -> dict[str, float]:
        n = self.requests
        quality, weak, strong = self.quality_sum / n, self.weak_quality_sum / n, self.strong_quality_sum / n
        return {
            "requests": n,
            "quality": round(quality, 4),
            "cost_per_request_usd": round(self.cost / n, 7),
            "escalation_rate": round(self.escalated / n, 4),
            "pgr": round((quality - weak) / (strong - weak), 4),
            "cost_share_of_strong": round(self.cost / self.strong_cost, 4),
            "weak_quality": round(weak, 4),
            "weak_cost_per_request_usd": round(self.weak_cost / n, 7),
            "strong_quality": round(strong, 4),
            "strong_cost_per_request_usd": round(self.strong_cost / n, 7),
        }


def math_heuristic() -> HeuristicGate:
    """The default checks plus both math checks: a marked final number, and arithmetic that holds."""
    return HeuristicGate([*DEFAULT_CHECKS, FinalAnswerCheck("number"), check_arithmetic])


def rule_gates(math: bool) -> dict[str, Callable[[], QualityGate]]:
    """The gates that need no training; the math checks only for math."""
    gates: dict[str, Callable[[], QualityGate]] = {"heuristic": HeuristicGate}
    if math:
        gates["heuristic+final"] = lambda: HeuristicGate([*DEFAULT_CHECKS, FinalAnswerCheck("number")])
        gates["heuristic+arithmetic"] = lambda: HeuristicGate([*DEFAULT_CHECKS, check_arithmetic])
        gates["heuristic+final+arithmetic"] = math_heuristic
    gates["oracle"] = OracleGate
    return gates


def learned_gates(judge: AnswerJudge) -> dict[str, Callable[[], QualityGate]]:
    """The gates built on a trained judge."""
    gates: dict[str, Callable[[], QualityGate]] = {}
    for t in THRESHOLDS:
        gates[f"learned@{t}"] = lambda t=t: LearnedJudgeGate(judge, t)  # type: ignore[misc]
        gates[f"heuristic+final+arithmetic+learned@{t}"] = lambda t=t: Cascade(  # type: ignore[misc]
            [math_heuristic(), LearnedJudgeGate(judge, t)]
        )
    return gates


def cross_validate(
    table: OutcomeTable, folds: int, seed: int, train: bool
) -> tuple[dict[str, Totals], dict[str, float]]:
    """Every gate over `folds` held-out folds: the totals, and the judge's training time and held-out AUC."""
    from sklearn.metrics import roc_auc_score

    totals: dict[str, Totals] = {}
    training, aucs, pooled_aucs, latencies = 0.0, [], [], []
    for train_table, test_table in table.kfold(folds, seed=seed):
        gates = rule_gates(math=train)
        if train:
            started = time.perf_counter()
            judge = AnswerJudge.train(train_table, models=[WEAK.id])
            training += time.perf_counter() - started
            predicted = judge.predict(
                [row.prompt_text for row in test_table],
                [row.outcomes[WEAK.id].response or "" for row in test_table],
            )
            aucs.append(roc_auc_score([row.outcomes[WEAK.id].score for row in test_table], predicted))
            for row in test_table:  # what the gate adds to a call: one prediction, timed alone
                started = time.perf_counter()
                judge.predict_one(row.prompt_text, row.outcomes[WEAK.id].response or "")
                latencies.append(time.perf_counter() - started)
            gates |= learned_gates(judge)
            # For comparison only: a judge trained on both models' answers, scored on the weak ones.
            pooled = AnswerJudge.train(train_table, models=[WEAK.id, STRONG.id])
            predicted = pooled.predict(
                [row.prompt_text for row in test_table],
                [row.outcomes[WEAK.id].response or "" for row in test_table],
            )
            pooled_aucs.append(roc_auc_score([row.outcomes[WEAK.id].score for row in test_table], predicted))
        for name, make in gates.items():
            report = run_cascade_offline(test_table, make(), weak=WEAK, strong=STRONG)
            totals.setdefault(name, Totals()).add(report)
    summary = {"training_seconds": round(training, 1)}
    if aucs:
        summary["held_out_auc_mean"] = round(sum(aucs) / len(aucs), 4)
        summary["held_out_auc_trained_on_both_models"] = round(sum(pooled_aucs) / len(pooled_aucs), 4)
        latencies.sort()
        summary["predict_p50_ms"] = round(latencies[len(latencies) // 2] * 1000, 2)
        summary["predict_p99_ms"] = round(latencies[int(len(latencies) * 0.99)] * 1000, 2)
    return totals, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line of every figure")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict[str, object] = {"folds": args.folds, "seed": args.seed}
    mmlu = load_routellm("mmlu")
    with_answers = sum(1 for row in mmlu if row.outcomes[WEAK.id].response is not None)
    results["mmlu"] = {
        "rows": len(mmlu),
        "rows_with_recorded_answers": with_answers,
        "skipped": with_answers == 0,
    }
    print(f"MMLU: {len(mmlu):,} rows, {with_answers} with a recorded answer: skipped (no answer to gate)")

    for dataset, train in (("gsm8k", True), ("mt-bench", False)):
        table = load_routellm(dataset)
        totals, judge = cross_validate(table, args.folds, args.seed, train)
        figures = {name: total.figures() for name, total in totals.items()}
        results[dataset] = {"gates": figures, **({"judge": judge} if train else {})}
        first = next(iter(figures.values()))
        print(f"\n{dataset}: {first['requests']} prompts, {args.folds}-fold held-out figures")
        print(
            f"  always weak  : quality {first['weak_quality']:.4f}  cost/request "
            f"${first['weak_cost_per_request_usd']:.7f}"
        )
        print(
            f"  always strong: quality {first['strong_quality']:.4f}  cost/request "
            f"${first['strong_cost_per_request_usd']:.7f}"
        )
        print(
            f"  {'gate':40} {'quality':>8} {'$/request':>11} {'escalated':>9} {'PGR':>7} {'cost/strong':>11}"
        )
        for name, f in figures.items():
            print(
                f"  {name:40} {f['quality']:8.4f} {f['cost_per_request_usd']:11.7f} "
                f"{f['escalation_rate']:9.1%} {f['pgr']:7.3f} {f['cost_share_of_strong']:11.1%}"
            )
        if train:
            print(
                f"  learned judge: held-out AUC {judge['held_out_auc_mean']:.3f} (mean of the folds; "
                f"{judge['held_out_auc_trained_on_both_models']:.3f} when trained on both models' answers); "
                f"training {judge['training_seconds']:.1f} s over {args.folds} folds; one prediction "
                f"p50 {judge['predict_p50_ms']:.2f} ms, p99 {judge['predict_p99_ms']:.2f} ms"
            )
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\n{results['seconds']} s in all")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
