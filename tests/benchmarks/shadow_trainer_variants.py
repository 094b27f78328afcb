"""Ways to train from a small shadow log, scored as `shadow_replay.py` scores the shipped one.

Per seed, the bundled GSM8K and MMLU rows are split in two halves (`OutcomeTable.kfold(2, seed)`); the
first is replayed as live traffic (`shadow_replay.replay_live`: shadow at `--share`, recorded scores as
the judge, the default policy live with its estimate trained without the two tables, downward shadows
of the strong model's calls unless `--no-downward`), and each variant trains on the shadow log's pairs
alone. Every variant is scored on the second half, which no variant and no choice looks at, as its
APGR over the APGR of a linear router trained on the whole first half.

Variants (`--variants`, comma-separated):

- `auto`, `linear`: `train_router` as `gearshift train --from-log` runs it (auto, with the log's
  unlabeled prompts and `shared_fit_for` the log's pairs: the models' fits shrunk toward a shared one),
  and linear; `auto-independent`: `auto` with each model's regression fitted alone (`shared_fit=0`,
  `train --from-log` before shared fits); `auto-pseudo`: `auto` whose final fit also learns from the
  log's pseudo-labeled prompts (`pseudo_weight=PSEUDO_WEIGHT`; measured, not the default: see
  `shadow_operating_point.py`);
- `topics`: the topic model alone, its topics found over the log's every prompt; `topics-pairs`: over
  the shadow pairs' prompts alone;
- `C=X`: the linear model with inverse L2 strength X (shipped: 0.3);
- `dims=N`: N hashed text columns (0: the dense features alone; shipped: 8,192);
- `notasks`: without the task one-hot;
- `diff`: one logistic regression on the pair's score difference, (strong - weak + 1) / 2, as a soft label;
- `disagree`: the same on the pairs whose two scores differ (win/lose);
- `iw`: the per-model fits weighted by 1 / `sample_share` (equal weights under uniform sampling);
- `bagN`: the mean z-scored gain of N linear fits on 80% subsamples;
- `priorW`: W x the z-scored gain of the live policy's estimate + (1 - W) x the linear router's;
- `pick=LABEL`: the candidate of `auto` named LABEL (as `training.scores` names it: `linear(C=0.3)`,
  `topics(k=8)`, `topics(k=16)`), with `auto`'s shared fit but no pseudo-labels, refitted on the whole
  log whatever internal CV says: a fixed choice, and (the best per seed) the ceiling of any rule that
  chooses among the candidates.

    uv run python tests/benchmarks/shadow_trainer_variants.py [--seeds 0,1,2,3,4] [--share 0.05]
        [--sampling uniform|uncertain] [--no-downward] [--variants auto,linear,...] [--json]

Prints one JSON line per variant: {"variant", "ratios" (per seed), "mean", "worst"}, then one line of
the replays: {"shadow_pairs", "downward_pairs", "shadow_spent_usd", "live_spent_usd"} (per seed).
Needs `gearshift[train]`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from shadow_replay import held_out_apgr, predicted_gain, replay_live

from gearshift.datasets import (
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    OutcomeTable,
    load_routellm,
)
from gearshift.learning import DefaultPolicy, LearnedRouter, train_router
from gearshift.learning._default_training import train_default_router
from gearshift.learning._features import FeatureSpec, build_features, prompt_inputs
from gearshift.learning._fitting import Design, FitData, fill_missing, fit_logistic
from gearshift.learning._pseudo_labels import PSEUDO_WEIGHT
from gearshift.learning._training import ROUTER_TEXT_DIMS, shared_fit_for

_TABLES = ("gsm8k", "mmlu")
_MODELS = (ROUTELLM_WEAK_MODEL, ROUTELLM_STRONG_MODEL)


@dataclass(frozen=True)
class Replayed:
    """One seed's shadow log (as a table), the held-out half, and the live policy's estimate."""

    shadow: OutcomeTable
    sample_share: dict[str, float]
    downward_pairs: int
    shadow_spent_usd: float
    live_spent_usd: float
    held: OutcomeTable
    prior: LearnedRouter
    apgr_full: float
    unlabeled: list[str | list[dict[str, str]]]


def _z(gain: np.ndarray) -> np.ndarray:
    return np.asarray((gain - gain.mean()) / (gain.std() or 1.0))


def linear_gain(
    train: OutcomeTable,
    held: OutcomeTable,
    *,
    text_dims: int = ROUTER_TEXT_DIMS,
    strength: float = 0.3,
    tasks: bool = True,
    target: str = "per_model",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Predicted strong-minus-weak gain on `held` of logistic regressions fitted on `train`'s pairs."""
    spec = FeatureSpec(text_dims, None, 0, True, train.tasks if tasks and len(train.tasks) > 1 else ())
    scores = np.array([[row.outcomes[m].score for m in _MODELS] for row in train])
    data = FitData(spec, build_features(spec, prompt_inputs(train.rows)), scores, fill_missing(scores))
    design = Design.of(data)
    held_features = build_features(spec, prompt_inputs(held.rows))
    if target == "diff":
        label = ((scores[:, 1] - scores[:, 0] + 1) / 2)[:, None]
        w, b = fit_logistic(design, label, np.arange(len(scores)), strength)
        return np.asarray(design.predictor(spec, w, b).predict(spec, held_features)[:, 0])
    if weights is None:
        w, b = fit_logistic(design, scores, np.arange(len(scores)), strength)
    else:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped,unused-ignore]

        fits = [
            LogisticRegression(C=strength, max_iter=500).fit(design.x, scores[:, m], sample_weight=weights)
            for m in range(2)
        ]
        w = np.stack([f.coef_[0] for f in fits], axis=1)
        b = np.array([f.intercept_[0] for f in fits])
    predicted = design.predictor(spec, w, b).predict(spec, held_features)
    return np.asarray(predicted[:, 1] - predicted[:, 0])


def _bagged(r: Replayed, bags: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = int(0.8 * len(r.shadow))
    gains = [
        _z(linear_gain(r.shadow.subset(sorted(rng.choice(len(r.shadow), size, replace=False))), r.held))
        for _ in range(bags)
    ]
    return np.asarray(np.mean(gains, axis=0))


def _disagreeing(r: Replayed) -> np.ndarray:
    keep = [
        i
        for i, row in enumerate(r.shadow)
        if row.outcomes[ROUTELLM_STRONG_MODEL].score != row.outcomes[ROUTELLM_WEAK_MODEL].score
    ]
    return linear_gain(r.shadow.subset(keep), r.held, target="diff")


def _importance_weighted(r: Replayed) -> np.ndarray:
    weights = np.array([1.0 / r.sample_share[row.id] for row in r.shadow])
    return linear_gain(r.shadow, r.held, weights=weights / weights.mean())


def _picked(r: Replayed, seed: int, label: str) -> np.ndarray:
    """Held-out gains of `auto`'s candidate `label`, refitted on the whole log (no pseudo-labels)."""
    from gearshift._progress import WorkCounter
    from gearshift.learning import _training as training

    table = r.shadow
    spec = FeatureSpec(ROUTER_TEXT_DIMS, None, 0, True, table.tasks if len(table.tasks) > 1 else ())
    scores = np.array([[row.outcomes[m].score for m in _MODELS] for row in table])
    data = FitData(spec, build_features(spec, prompt_inputs(table.rows)), scores, fill_missing(scores))
    design = Design.of(data)
    fold = training._folds(len(table), 3, seed)
    topics = training._topic_designs("auto", spec, data, design, r.unlabeled, seed)
    shared = shared_fit_for(len(table), len(table.models))
    found = training._candidates(data, design, "auto", fold, WorkCounter(10**6, None), topics, shared)
    if label not in found:
        raise SystemExit(f"--variants pick=: no candidate named {label!r}; choose from {', '.join(found)}")
    chosen = found[label]
    predictor = training._fit(data, design, chosen.method, chosen.settings, chosen.start, topics)
    predicted = predictor.predict(spec, build_features(spec, prompt_inputs(r.held.rows)))
    return np.asarray(predicted[:, 1] - predicted[:, 0])


def _auto(r: Replayed, seed: int, **options: float) -> np.ndarray:
    """Held-out gains of `train_router` as `gearshift train --from-log` runs it, `options` overriding."""
    given = {"shared_fit": shared_fit_for(len(r.shadow), len(r.shadow.models)), **options}
    router = train_router(r.shadow, method="auto", seed=seed, unlabeled=r.unlabeled, **given)
    return predicted_gain(router, r.held)


def variant_gain(name: str, r: Replayed, seed: int) -> np.ndarray:
    """The held-out gains of the variant called `name` (see the module docstring)."""
    fixed: dict[str, Callable[[], np.ndarray]] = {
        "auto": lambda: _auto(r, seed),
        "auto-pseudo": lambda: _auto(r, seed, pseudo_weight=PSEUDO_WEIGHT),
        "auto-independent": lambda: _auto(r, seed, shared_fit=0.0),
        "linear": lambda: predicted_gain(train_router(r.shadow, method="linear", seed=seed), r.held),
        "topics": lambda: predicted_gain(
            train_router(r.shadow, method="topics", seed=seed, unlabeled=r.unlabeled), r.held
        ),
        "topics-pairs": lambda: predicted_gain(train_router(r.shadow, method="topics", seed=seed), r.held),
        "linear+topics": lambda: (
            0.5 * predicted_gain(train_router(r.shadow, method="linear", seed=seed), r.held)
            + 0.5
            * predicted_gain(
                train_router(r.shadow, method="topics", seed=seed, unlabeled=r.unlabeled), r.held
            )
        ),
        "notasks": lambda: linear_gain(r.shadow, r.held, tasks=False),
        "diff": lambda: linear_gain(r.shadow, r.held, target="diff"),
        "disagree": lambda: _disagreeing(r),
        "iw": lambda: _importance_weighted(r),
    }
    if name in fixed:
        return fixed[name]()
    if name.startswith("C="):
        return linear_gain(r.shadow, r.held, strength=float(name[2:]))
    if name.startswith("dims="):
        return linear_gain(r.shadow, r.held, text_dims=int(name[5:]))
    if name.startswith("bag"):
        return _bagged(r, int(name[3:]), seed)
    if name.startswith("pick="):
        return _picked(r, seed, name[5:])
    if name.startswith("prior"):
        weight = float(name[5:])
        prior = predicted_gain(r.prior, r.held)
        return weight * _z(prior) + (1 - weight) * _z(linear_gain(r.shadow, r.held))
    raise SystemExit(f"--variants: no variant named {name!r}")


def replayed(seed: int, share: float, sampling: str, prior: LearnedRouter, downward: bool) -> Replayed:
    """Replay one seed's live half and read its shadow log; fit the full-table router."""
    table = OutcomeTable([row for name in _TABLES for row in load_routellm(name, task_labels="category")])  # type: ignore[arg-type]
    live, held = table.kfold(2, seed=seed)[0]
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "live.jsonl"
        log = replay_live(live, DefaultPolicy(prior), share, seed, log_path, sampling, downward=downward)
        shares = {}
        for line in log_path.read_text(encoding="utf-8").split("\n"):
            record = json.loads(line) if line.strip() else {}
            if record.get("kind") == "shadow":
                shares[record["request_id"]] = float(record["sample_share"])
    full = train_router(live, method="linear", seed=seed)
    return Replayed(
        log.table,
        shares,
        log.downward_pairs,
        log.shadow_spent_usd,
        log.live_spent_usd,
        held,
        prior,
        held_out_apgr(full, held),
        log.read.unlabeled,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--sampling", default="uniform", choices=["uniform", "uncertain"])
    parser.add_argument(
        "--no-downward", action="store_true", help="shadow only the calls below the reference (upward)"
    )
    parser.add_argument("--variants", default="auto,linear,C=0.03,C=1,dims=0,notasks,diff,prior0.5")
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    args = parser.parse_args()
    names = args.variants.split(",")
    prior = train_default_router(exclude=_TABLES)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    replays: dict[str, list[float]] = {
        "shadow_pairs": [],
        "downward_pairs": [],
        "shadow_spent_usd": [],
        "live_spent_usd": [],
    }
    for seed in (int(s) for s in args.seeds.split(",")):
        r = replayed(seed, args.share, args.sampling, prior, not args.no_downward)
        replays["shadow_pairs"].append(len(r.shadow))
        replays["downward_pairs"].append(r.downward_pairs)
        replays["shadow_spent_usd"].append(round(r.shadow_spent_usd, 4))
        replays["live_spent_usd"].append(round(r.live_spent_usd, 4))
        if not args.json:
            print(
                f"seed {seed}: {len(r.shadow)} shadow pairs ({r.downward_pairs} downward), shadows "
                f"${r.shadow_spent_usd:.4f} against ${r.live_spent_usd:.4f} live, "
                f"full-table APGR {r.apgr_full:.4f}"
            )
        for name in names:
            ratios[name].append(held_out_apgr(variant_gain(name, r, seed), r.held) / r.apgr_full)
    for name, values in ratios.items():
        figures = {
            "variant": name,
            "ratios": [round(v, 3) for v in values],
            "mean": round(float(np.mean(values)), 3),
            "worst": round(min(values), 3),
        }
        print(json.dumps(figures))
    print(json.dumps(replays))


if __name__ == "__main__":
    main()
