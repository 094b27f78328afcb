"""Live traffic retrains the router: the bundled GSM8K and MMLU outcomes replayed as live traffic with
shadow evaluation at 5% (the recorded outcomes stand in for the judge), then a router trained only
from that shadow log, against one trained on the whole table.

The bundled rows (`load_routellm(..., task_labels="category")`) are split in two halves by
`OutcomeTable.kfold(2, seed)`. The first half is the live traffic: it is replayed through a real
`Router` (the zero-training `SignalScorer` policy, `ReplayProvider`, a JSONL decision log with
prompts) with `[routing.shadow] share = 0.05, judge = "recorded"`. `train --from-log`'s table
(`table_from_log`) is built from that log and a router trained on it; a second router is trained on
the whole first half. Both predict the second half, never seen by either; sweeping the threshold on the
predicted strong-minus-weak gain gives each one's APGR there (gearshift.evaluation's metric).

`--feedback-share F` also sends `Router.feedback` for that share of the live calls (the routed answer's
recorded score standing in for a user's), which `train --from-log` trains on as one-model rows; the
default, 0, is shadow pairs alone.

    uv run python tests/benchmarks/shadow_replay.py [--share 0.05] [--feedback-share 0] [--method linear]
                                                    [--seed 0] [--json]

Prints a JSON object last: {"live_rows", "shadow_rows", "apgr_shadow", "apgr_full", "ratio", ...}.
The target: ratio >= 0.90. Needs `gearshift[train]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from learned_router import threshold_curve

from gearshift import ModelRegistry, Router, ShadowConfig, SignalScorer
from gearshift._demo import replay_table
from gearshift.datasets import (
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    OutcomeTable,
    load_routellm,
    routellm_models,
)
from gearshift.evaluation import apgr
from gearshift.learning import train_router
from gearshift.providers import ReplayProvider
from gearshift.reporting._log_outcomes import table_from_log
from gearshift.routing._decision_log import open_decision_log


def held_out_apgr(router: Any, held: OutcomeTable) -> float:
    """APGR of `router`'s predicted gain over the rows of `held`."""
    predicted = router.predict(held.rows)
    weak, strong = router.models.index(ROUTELLM_WEAK_MODEL), router.models.index(ROUTELLM_STRONG_MODEL)
    gain = predicted[:, strong] - predicted[:, weak]
    weak_scores = np.array([row.outcomes[ROUTELLM_WEAK_MODEL].score for row in held])
    strong_scores = np.array([row.outcomes[ROUTELLM_STRONG_MODEL].score for row in held])
    shares, quality = threshold_curve(gain, weak_scores, strong_scores)
    return float(
        apgr(
            shares,
            quality,
            weak_quality=float(weak_scores.mean()),
            strong_quality=float(strong_scores.mean()),
        )
    )


def measure(share: float, feedback_share: float, method: str, seed: int) -> dict[str, Any]:
    table = OutcomeTable(
        [row for name in ("gsm8k", "mmlu") for row in load_routellm(name, task_labels="category")]  # type: ignore[arg-type]
    )
    live, held = table.kfold(2, seed=seed)[0]
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "live.jsonl"
        started = time.perf_counter()
        router = Router(
            ModelRegistry(routellm_models()),
            policy=SignalScorer(),
            providers=[ReplayProvider(live)],
            decision_log=open_decision_log(log_path, include_prompts=True),
            # A replay runs far faster than live traffic: no shadow may be dropped for being in flight.
            shadow=ShadowConfig(share=share, judge="recorded", seed=seed, max_in_flight=len(live)),
        )

        sampler = random.Random(seed + 1)

        async def replay() -> None:
            for result in await replay_table(router, live, run_id="live"):
                if sampler.random() < feedback_share:
                    router.feedback(result.request_id, result.response.metadata["score"], source="replay")
            await router.aclose()

        asyncio.run(replay())
        replay_s = time.perf_counter() - started
        assert router.shadow is not None
        shadow_table, read = table_from_log(log_path, min_rows=10)
    started = time.perf_counter()
    from_shadow = train_router(shadow_table, method=method, seed=seed)
    full = train_router(live, method=method, seed=seed)
    train_s = time.perf_counter() - started
    apgr_shadow = held_out_apgr(from_shadow, held)
    apgr_full = held_out_apgr(full, held)
    per_task = {}
    for name in ("gsm8k", "mmlu"):
        part = held.filter(lambda row, name=name: row.id.startswith(name))  # type: ignore[misc]
        if len(part):
            per_task[name] = {
                "rows": len(part),
                "apgr_shadow": round(held_out_apgr(from_shadow, part), 4),
                "apgr_full": round(held_out_apgr(full, part), 4),
            }
    return {
        "live_rows": len(live),
        "held_out_rows": len(held),
        "share": share,
        "shadow_rows": len(read.pairs()),
        "feedback_share": feedback_share,
        "feedback_rows": len(shadow_table) - len(read.pairs()),
        "shadow_skipped": router.shadow.skipped,
        "shadow_spent_usd": round(router.shadow.spent_usd, 4),
        "method": method,
        "apgr_shadow": round(apgr_shadow, 4),
        "apgr_full": round(apgr_full, 4),
        "ratio": round(apgr_shadow / apgr_full, 4) if apgr_full else None,
        "per_dataset": per_task,
        "replay_s": round(replay_s, 1),
        "train_s": round(train_s, 1),
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument(
        "--feedback-share", type=float, default=0.0, help="share of live calls that get feedback (default 0)"
    )
    parser.add_argument("--method", default="linear", choices=["auto", "linear", "knn", "blend"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = measure(args.share, args.feedback_share, args.method, args.seed)
    if not args.json:
        print(
            f"replayed {figures['live_rows']:,} live rows with shadow at {figures['share']:.0%}: "
            f"{figures['shadow_rows']:,} shadow pairs, {figures['feedback_rows']:,} feedback rows "
            f"({figures['replay_s']} s)"
        )
        print(
            f"held-out APGR ({figures['held_out_rows']:,} rows), router from the shadow log: "
            f"{figures['apgr_shadow']}"
        )
        print(f"held-out APGR, router from the whole live table:                 {figures['apgr_full']}")
        print(f"ratio: {figures['ratio']} (target >= 0.90)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
