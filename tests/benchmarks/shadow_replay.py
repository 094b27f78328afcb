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

Every call can get a shadow: one the live policy answered with the weak model an upward one (the
strong model answers it too), one it answered with the strong model a downward one (the weak model,
`[routing.shadow] downward`, on by default); `--no-downward` shadows only the weak model's calls, as
gearshift did before downward shadows.

`--live default` replays with the default policy as the live policy instead, its difficulty estimate
retrained without the replayed tables (`train_default_router(exclude=...)`, so it saw MT-Bench, and
with `--tables` naming one table, the other one too). `--sampling uncertain` samples the calls by how
close the live policy came to its cut point (`[routing.shadow] sampling`), at the same share.
`--tables mmlu` (or `gsm8k`) replays one table alone. `--prior` also scores a mix of the shadow
router with that leave-table-out estimate (its z-scored gains, weight 0.25, 0.5, 0.75, and the weight
3-fold cross-validation on the shadow log's pairs picks from 0 to 1: "apgr_prior_cv") and the
estimate alone, on the same held-out half: measured, not shipped.

`--feedback-share F` also sends `Router.feedback` for that share of the live calls (the routed answer's
recorded score standing in for a user's), which `train --from-log` trains on as one-model rows; the
default, 0, is shadow pairs alone.

The shadow router is trained as `gearshift train --from-log` trains it: `--shadow-method auto` (the
CLI's default) unless told otherwise, with the log's prompts that no shadow judged as unlabeled prompts
for its topic models (`--no-unlabeled`: the pairs' prompts alone); `--method` is the full-table
router's (linear by default).

    uv run python tests/benchmarks/shadow_replay.py [--share 0.05] [--feedback-share 0] [--method linear]
                                                    [--shadow-method auto] [--no-downward]
                                                    [--live signals|default] [--sampling uniform|uncertain]
                                                    [--tables gsm8k,mmlu] [--prior] [--no-unlabeled]
                                                    [--seed 0] [--json]

Prints a JSON object last: {"live_rows", "shadow_rows", "apgr_shadow", "apgr_full", "ratio", ...};
"shadow_rows_down" counts the downward pairs among "shadow_rows", and "shadow_spent_usd" is what the
shadows cost against "live_spent_usd", the replayed calls' own cost;
"per_dataset" gives the same per replayed table ("all" for the whole held-out half), with "ratio_*"
figures against the full-table router there, and with `--prior` "apgr_prior_alone" and
"apgr_prior_mix_<weight>". No figure or choice looks at the held-out half but the scoring.
The target: ratio >= 0.90. Needs `gearshift[train]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from learned_router import threshold_curve

from gearshift import ModelRegistry, Router, ShadowConfig, SignalScorer, read_records
from gearshift.cli._demo import replay_table
from gearshift.datasets import (
    ROUTELLM_DATASETS,
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    OutcomeTable,
    load_routellm,
    routellm_models,
)
from gearshift.evaluation import apgr
from gearshift.learning import METHODS, DefaultPolicy, LearnedRouter, train_router
from gearshift.learning._default_training import train_default_router
from gearshift.policies import Policy
from gearshift.providers import ReplayProvider
from gearshift.reporting._log_outcomes import LogOutcomes, table_from_log
from gearshift.routing._decision_log import open_decision_log


def predicted_gain(router: LearnedRouter, rows: OutcomeTable) -> np.ndarray:
    """`router`'s predicted score of the strong model minus the weak one's, per row."""
    predicted = router.predict(rows.rows)
    weak, strong = router.models.index(ROUTELLM_WEAK_MODEL), router.models.index(ROUTELLM_STRONG_MODEL)
    return np.asarray(predicted[:, strong] - predicted[:, weak])


def held_out_apgr(router: LearnedRouter | np.ndarray, held: OutcomeTable) -> float:
    """APGR over the rows of `held` of `router`'s predicted gain (or of the gains given)."""
    gain = router if isinstance(router, np.ndarray) else predicted_gain(router, held)
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


def _z(gain: np.ndarray) -> np.ndarray:
    return (gain - gain.mean()) / (gain.std() or 1.0)


_PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def prior_weight_by_cv(log_rows: OutcomeTable, prior: LearnedRouter, method: str, seed: int) -> float:
    """The weight of the prior in the z-scored mix that 3-fold cross-validation on the log's pairs
    (the rows with both models' outcomes) scores best: what a user could choose with their log alone."""
    pairs = log_rows.filter(
        lambda row: ROUTELLM_WEAK_MODEL in row.outcomes and ROUTELLM_STRONG_MODEL in row.outcomes
    )
    by_id: dict[str, tuple[float, float]] = {}
    for train, test in pairs.kfold(3, seed=seed):
        fold_router = train_router(train, method=method, seed=seed)
        for row, shadow_gain, prior_gain in zip(
            test, predicted_gain(fold_router, test), predicted_gain(prior, test), strict=True
        ):
            by_id[row.id] = (float(shadow_gain), float(prior_gain))
    shadow_gains = np.array([by_id[row.id][0] for row in pairs])
    prior_gains = np.array([by_id[row.id][1] for row in pairs])
    scores = {
        weight: held_out_apgr(weight * _z(prior_gains) + (1 - weight) * _z(shadow_gains), pairs)
        for weight in _PRIOR_WEIGHTS
    }
    return max(scores, key=scores.__getitem__)


@dataclass(frozen=True)
class ReplayedLog:
    """What replaying live traffic left: the table `train --from-log` reads from the log, and counts."""

    table: OutcomeTable
    read: LogOutcomes
    weak_answers: int
    shadow_skipped: int
    shadow_spent_usd: float
    live_spent_usd: float
    downward_pairs: int
    replay_s: float


def replay_live(
    live: OutcomeTable,
    policy: Policy,
    share: float,
    seed: int,
    log_path: Path,
    sampling: str = "uniform",
    feedback_share: float = 0.0,
    downward: bool = True,
) -> ReplayedLog:
    """Replay `live` through a real `Router` with shadow at `share` (recorded scores as the judge,
    downward shadows unless `downward` is false), logging to `log_path` with prompts, and read the
    log as `train --from-log` does."""
    started = time.perf_counter()
    router = Router(
        ModelRegistry(routellm_models()),
        policy=policy,
        providers=[ReplayProvider(live)],
        decision_log=open_decision_log(log_path, include_prompts=True),
        # A replay runs far faster than live traffic: no shadow may be dropped for being in flight.
        shadow=ShadowConfig(
            share=share,
            judge="recorded",
            seed=seed,
            max_in_flight=len(live),
            sampling=sampling,  # type: ignore[arg-type]
            downward=downward,
        ),
    )
    sampler = random.Random(seed + 1)
    weak_answers = 0
    live_spent = 0.0

    async def replay() -> None:
        nonlocal weak_answers, live_spent
        for result in await replay_table(router, live, run_id="live"):
            weak_answers += result.model_id == ROUTELLM_WEAK_MODEL
            live_spent += result.cost_usd
            if sampler.random() < feedback_share:
                router.feedback(result.request_id, result.response.metadata["score"], source="replay")
        await router.aclose()

    asyncio.run(replay())
    assert router.shadow is not None
    table, read = table_from_log(log_path, min_rows=10)
    directions = [r.get("direction") for r in read_records(log_path) if r["kind"] == "shadow"]
    return ReplayedLog(
        table,
        read,
        weak_answers,
        router.shadow.skipped,
        router.shadow.spent_usd,
        live_spent,
        directions.count("down"),
        time.perf_counter() - started,
    )


def measure(
    share: float,
    feedback_share: float,
    method: str,
    seed: int,
    *,
    tables: tuple[str, ...] = ("gsm8k", "mmlu"),
    live_policy: str = "signals",
    sampling: str = "uniform",
    with_prior: bool = False,
    shadow_method: str = "auto",
    downward: bool = True,
    use_unlabeled: bool = True,
) -> dict[str, Any]:
    table = OutcomeTable(
        [row for name in tables for row in load_routellm(name, task_labels="category")]  # type: ignore[arg-type]
    )
    live, held = table.kfold(2, seed=seed)[0]
    # Trained without the replayed tables: what a user's prior knows of traffic it never saw.
    prior = train_default_router(exclude=tables) if live_policy == "default" or with_prior else None
    policy = DefaultPolicy(prior) if live_policy == "default" else SignalScorer()
    with tempfile.TemporaryDirectory() as folder:
        replayed = replay_live(
            live, policy, share, seed, Path(folder) / "live.jsonl", sampling, feedback_share, downward
        )
    shadow_table, read, weak_answers = replayed.table, replayed.read, replayed.weak_answers
    started = time.perf_counter()
    unlabeled = read.unlabeled if use_unlabeled else []
    from_shadow = train_router(shadow_table, method=shadow_method, seed=seed, unlabeled=unlabeled)
    full = train_router(live, method=method, seed=seed)
    train_s = time.perf_counter() - started
    apgr_shadow = held_out_apgr(from_shadow, held)
    apgr_full = held_out_apgr(full, held)
    cv_weight = 0.0
    if prior is not None and with_prior:
        cv_weight = prior_weight_by_cv(shadow_table, prior, shadow_method, seed)
    parts = {"all": held} | {
        name: held.filter(lambda row, name=name: row.id.startswith(name))  # type: ignore[misc]
        for name in tables
    }
    per_task = {}
    for name, part in parts.items():
        if not len(part) or (name != "all" and len(tables) == 1):
            continue
        figures = {
            "rows": len(part),
            "apgr_shadow": round(held_out_apgr(from_shadow, part), 4),
            "apgr_full": round(held_out_apgr(full, part), 4),
        }
        if prior is not None and with_prior:
            gain_prior, gain_shadow = predicted_gain(prior, part), predicted_gain(from_shadow, part)
            figures["apgr_prior_alone"] = round(held_out_apgr(gain_prior, part), 4)
            for weight in (0.25, 0.5, 0.75):
                mixed = weight * _z(gain_prior) + (1 - weight) * _z(gain_shadow)
                figures[f"apgr_prior_mix_{weight:g}"] = round(held_out_apgr(mixed, part), 4)
            mixed = cv_weight * _z(gain_prior) + (1 - cv_weight) * _z(gain_shadow)
            figures["apgr_prior_cv"] = round(held_out_apgr(mixed, part), 4)
        figures.update(
            {
                f"ratio{key.removeprefix('apgr')}": round(value / figures["apgr_full"], 4)
                for key, value in list(figures.items())
                if key.startswith("apgr_") and key != "apgr_full" and figures["apgr_full"]
            }
        )
        per_task[name] = figures
    return {
        "tables": list(tables),
        "live_policy": live_policy,
        "prior_saw": None if prior is None else [name for name in ROUTELLM_DATASETS if name not in tables],
        "sampling": sampling,
        "downward": downward,
        "prior_weight_by_cv": cv_weight if with_prior else None,
        "live_rows": len(live),
        "weak_answers": weak_answers,
        "held_out_rows": len(held),
        "share": share,
        "shadow_rows": len(read.pairs()),
        "shadow_rows_down": replayed.downward_pairs,
        "feedback_share": feedback_share,
        "feedback_rows": len(shadow_table) - len(read.pairs()),
        "shadow_skipped": replayed.shadow_skipped,
        "shadow_spent_usd": round(replayed.shadow_spent_usd, 4),
        "live_spent_usd": round(replayed.live_spent_usd, 4),
        "method": method,
        "shadow_method": shadow_method,
        "shadow_method_kept": from_shadow.training.method,
        "apgr_shadow": round(apgr_shadow, 4),
        "apgr_full": round(apgr_full, 4),
        "ratio": round(apgr_shadow / apgr_full, 4) if apgr_full else None,
        "per_dataset": per_task,
        "replay_s": round(replayed.replay_s, 1),
        "train_s": round(train_s, 1),
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument(
        "--feedback-share", type=float, default=0.0, help="share of live calls that get feedback (default 0)"
    )
    parser.add_argument("--method", default="linear", choices=list(METHODS))
    parser.add_argument(
        "--shadow-method",
        default="auto",
        choices=list(METHODS),
        help="the shadow router's method (default auto, as gearshift train --from-log)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--live", default="signals", choices=["signals", "default"], help="the live policy (default: signals)"
    )
    parser.add_argument("--sampling", default="uniform", choices=["uniform", "uncertain"])
    parser.add_argument(
        "--no-downward", action="store_true", help="shadow only the calls below the reference (upward)"
    )
    parser.add_argument("--tables", default="gsm8k,mmlu", help="the bundled tables replayed, comma-separated")
    parser.add_argument(
        "--prior", action="store_true", help="also score the leave-table-out estimate and its mixes"
    )
    parser.add_argument(
        "--no-unlabeled",
        action="store_true",
        help="train the shadow router without the log's unlabeled prompts (its topics from its pairs alone)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = measure(
        args.share,
        args.feedback_share,
        args.method,
        args.seed,
        tables=tuple(args.tables.split(",")),
        live_policy=args.live,
        sampling=args.sampling,
        with_prior=args.prior,
        shadow_method=args.shadow_method,
        downward=not args.no_downward,
        use_unlabeled=not args.no_unlabeled,
    )
    if not args.json:
        print(
            f"replayed {figures['live_rows']:,} live rows with shadow at {figures['share']:.0%}: "
            f"{figures['shadow_rows']:,} shadow pairs ({figures['shadow_rows_down']:,} downward), "
            f"{figures['feedback_rows']:,} feedback rows ({figures['replay_s']} s); shadows cost "
            f"${figures['shadow_spent_usd']} against ${figures['live_spent_usd']} for the live calls"
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
