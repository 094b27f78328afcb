"""Drift: GSM8K traffic followed by MMLU traffic through a learned router calibrated to a target
strong-call share, with and without recalibration on live traffic (`RecalibratingPolicy`).

Each bundled dataset (`load_routellm(..., task_labels="category")`) is split in two halves by
`OutcomeTable.kfold(2, seed)`. A linear learned router is trained on the first halves of both and
calibrated to `--target` (the share of calls to GPT-4) on them. The second halves are the live
traffic: all GSM8K prompts, then all MMLU prompts, each decided by a real `Router` (`Router.decide`,
the same pure path a call takes). The strong share is measured in consecutive windows of 500
requests, for the router as calibrated and for the same router recalibrating (window and interval
from the `[routing.learned]` defaults unless given, with the share feedback on).

    uv run python tests/benchmarks/drift_recalibration.py [--target 0.3] [--window 500] [--every 100]
                                                          [--feedback-horizon 10] [--quality-floor Q]
                                                          [--order bundled|shuffled] [--json]

Prints a JSON object last: {"target", "static": {...}, "recalibrated": {...}} where each has the
per-window shares, "max_abs_error" (points), "windows_within_3_points" and "mean_quality" (the mean
recorded score of the chosen models). `--feedback-horizon 0` measures the quantile re-fit alone.
`--quality-floor Q` adds "quality_floor": the same traffic through recalibration holding a mean
predicted quality of Q, with each window's mean recorded score (and the static router's).
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

from gearshift import ModelRegistry, Router, StepContext
from gearshift._messages import ChatRequest
from gearshift.datasets import ROUTELLM_STRONG_MODEL, OutcomeTable, load_routellm, routellm_models
from gearshift.learning import LearnedPolicy, train_router
from gearshift.learning._recalibration import RecalibratingPolicy
from gearshift.policies import Policy
from gearshift.providers import ReplayProvider

WINDOW = 500


def strong_shares(policy: Policy, traffic: OutcomeTable) -> tuple[list[float], float, list[float]]:
    """The share of calls routed to the strong model in each window of 500 consecutive requests, the
    mean recorded score of the models chosen (what holding the share costs in quality), and that mean
    in each window."""
    router = Router(ModelRegistry(routellm_models()), policy=policy, providers=[ReplayProvider(traffic)])
    chosen = [
        router.decide(ChatRequest(messages=row.as_messages()), StepContext(metadata={"task": row.task})).model
        for row in traffic
    ]
    strong = [model == ROUTELLM_STRONG_MODEL for model in chosen]
    scores = [row.outcomes[model].score for row, model in zip(traffic, chosen, strict=True)]
    starts = range(0, len(strong), WINDOW)
    shares = [sum(strong[i : i + WINDOW]) / len(strong[i : i + WINDOW]) for i in starts]
    qualities = [sum(scores[i : i + WINDOW]) / len(scores[i : i + WINDOW]) for i in starts]
    return shares, sum(scores) / len(scores), qualities


def summary(result: tuple[list[float], float, list[float]], target: float) -> dict[str, Any]:
    shares, quality, _ = result
    errors = [abs(s - target) * 100 for s in shares]
    return {
        "mean_quality": round(quality, 4),
        "shares": [round(s, 4) for s in shares],
        "max_abs_error_points": round(max(errors), 2),
        "windows_within_3_points": sum(e <= 3 for e in errors),
        "windows": len(shares),
    }


def measure(
    target: float,
    window: int,
    every: int,
    horizon: float,
    seed: int,
    order: str,
    quality_floor: float | None = None,
) -> dict[str, Any]:
    halves = {
        name: load_routellm(name, task_labels="category").kfold(2, seed=seed)[0] for name in ("gsm8k", "mmlu")
    }  # type: ignore[arg-type]
    train = OutcomeTable([row for first, _ in halves.values() for row in first])
    live = {name: list(halves[name][1]) for name in ("gsm8k", "mmlu")}
    if order == "shuffled":  # one drift (GSM8K -> MMLU), not also MMLU's subject-by-subject file order
        for rows in live.values():
            random.Random(seed).shuffle(rows)
    traffic = OutcomeTable([row for name in ("gsm8k", "mmlu") for row in live[name]])
    trained = train_router(train, method="linear", seed=seed)
    point = trained.operating_point_for(target_strong_share=target)
    static = strong_shares(LearnedPolicy(trained, operating_point=point), traffic)

    def recalibrating_to(**held: float) -> RecalibratingPolicy:
        policy = LearnedPolicy(trained, operating_point=point)
        return RecalibratingPolicy(policy, window=window, every=every, feedback_horizon=horizon, **held)

    recalibrating = recalibrating_to(target_strong_share=target)
    recalibrated = strong_shares(recalibrating, traffic)
    gsm8k_rows = len(halves["gsm8k"][1])
    floor: dict[str, Any] | None = None
    if quality_floor is not None:
        shares, quality, qualities = strong_shares(recalibrating_to(quality_floor=quality_floor), traffic)
        floor = {
            "quality_floor": quality_floor,
            "mean_quality": round(quality, 4),
            "window_quality": [round(q, 4) for q in qualities],
            "windows_at_least_floor_minus_3_points": sum(q >= quality_floor - 0.03 for q in qualities),
            "shares": [round(x, 4) for x in shares],
            "static_window_quality": [round(q, 4) for q in static[2]],
        }
    return {
        "target": target,
        "order": order,
        "traffic": {"gsm8k_rows_first": gsm8k_rows, "mmlu_rows_then": len(traffic) - gsm8k_rows},
        "recalibration": {
            "window": window,
            "every": every,
            "share_feedback_horizon": horizon,
            "count": recalibrating.recalibrations,
        },
        "static": summary(static, target),
        "recalibrated": summary(recalibrated, target),
        "quality_floor": floor,
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--window", type=int, default=500, help="recalibration window (decisions)")
    parser.add_argument("--every", type=int, default=100, help="decisions between recalibrations")
    parser.add_argument(
        "--feedback-horizon",
        type=float,
        default=10,
        help="share feedback horizon in decisions (0: the quantile re-fit alone)",
    )
    parser.add_argument(
        "--quality-floor",
        type=float,
        help="also measure recalibration holding this mean predicted quality instead of the share",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--order",
        choices=["bundled", "shuffled"],
        default="bundled",
        help="bundled: each dataset in file order (MMLU subject by subject); shuffled: each dataset shuffled",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = measure(
        args.target, args.window, args.every, args.feedback_horizon, args.seed, args.order, args.quality_floor
    )
    if not args.json:
        for name in ("static", "recalibrated"):
            f = figures[name]
            print(
                f"{name:13s} strong share per 500 requests: {', '.join(f'{s:.2f}' for s in f['shares'])}; "
                f"max error {f['max_abs_error_points']} points, "
                f"{f['windows_within_3_points']}/{f['windows']} windows within 3 points; "
                f"mean quality {f['mean_quality']}"
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
