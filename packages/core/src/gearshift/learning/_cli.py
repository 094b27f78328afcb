"""`gearshift train`: train a learned router on an outcome table, calibrate it, and save the artifact.

    gearshift train (--data OUTCOMES.jsonl | --from-log LOG [--min-rows N]) --out ROUTER.json
                    [--method auto|linear|topics|knn|blend] [--router TRAINED.json]
                    [--target-strong-share X | --quality-floor Q | --max-cost USD] [--seed N] [--json]

The operating point is calibrated on the router's out-of-fold predictions over the training table
(predictions from models that did not see the row), so the expected figures it prints are honest.
Point `[routing.learned] path` of gearshift.toml at the file to route with it. `--router` keeps a
trained router and only re-calibrates its operating point on the rows (live traffic's, with
`--from-log`), for a target given with `--target-strong-share`, `--quality-floor` or `--max-cost`.
`--from-log` trains on every shadow pair, whatever models it holds (over three tiers the pairs hold
several model sets), and on the feedback rows of those models; a model scored on fewer than
`--min-rows` rows, or only on the calls it answered (no shadow asked it), is left out and named
(`left_out` in the JSON), as `export-outcomes` does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["add_train_parser", "run_train"]


def add_train_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the `train` sub-command to the CLI's sub-parsers; returns its parser."""
    from ..cli._numbers import number_in, whole_number

    train = subcommands.add_parser(
        "train",
        help="train a learned router on an outcome table (JSONL) and save it as JSON",
        description="Train a learned router on an outcome table, calibrate its operating point and "
        "save it. Needs scikit-learn: pip install 'gearshift[train]'.",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="outcome table (JSONL, optionally .gz)")
    source.add_argument(
        "--from-log",
        type=Path,
        metavar="LOG",
        help="a decision log: train on its shadow pairs and feedback (see gearshift export-outcomes)",
    )
    train.add_argument(
        "--min-rows",
        type=whole_number(1),
        default=50,
        help="with --from-log, refuse to train on fewer rows with two or more models, and leave out a "
        "model scored on fewer rows (default 50)",
    )
    train.add_argument(
        "--router",
        type=Path,
        metavar="ROUTER.json",
        help="keep this trained router and only re-calibrate its operating point on the rows "
        "(give a target: --target-strong-share, --quality-floor or --max-cost)",
    )
    train.add_argument("--out", type=Path, required=True, help="where to write the router (JSON)")
    train.add_argument(
        "--method",
        choices=["auto", "linear", "topics", "knn", "blend"],
        default="auto",
        help="the quality predictor; auto picks by internal cross-validation (default)",
    )
    target = train.add_mutually_exclusive_group()
    target.add_argument(
        "--target-strong-share",
        type=number_in(0.0, 1.0),
        metavar="X",
        help="send this share (0-1) of calls to the most expensive model",
    )
    target.add_argument(
        "--quality-floor",
        type=number_in(0.0, 1.0),
        metavar="Q",
        help="the cheapest point whose mean quality is at least Q",
    )
    target.add_argument(
        "--max-cost",
        type=number_in(0.0),
        metavar="USD",
        help="the best point whose mean cost per request is at most USD",
    )
    train.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed of the internal cross-validation split"
    )
    train.add_argument(
        "--json", action="store_true", help="print only a summary as one JSON object (the rest to stderr)"
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return train  # type: ignore[no-any-return]


def run_train(args: argparse.Namespace) -> int:
    """Run `gearshift train`; returns the exit code. Errors are `GearshiftError`s for the CLI to print."""
    from .._errors import ConfigError
    from ..cli._output import Stages, check_output, replaced_output
    from ..datasets import load_outcomes
    from ._training import shared_fit_for, train_router

    check_output(args.out, "--out", reads={"--data": args.data, "--from-log": args.from_log})
    say = _printer(args.json)
    started = time.perf_counter()
    with Stages(enabled=not args.no_progress) as stages:
        stages.stage("reading the outcome table", 1)
        left_out: dict[str, str] | None = None
        unlabeled: list[Any] = []
        if args.from_log is not None:
            from ..reporting._log_outcomes import left_out_note, table_from_log

            table, read = table_from_log(args.from_log, min_rows=args.min_rows)
            left_out = read.select(args.min_rows).left_out
            if left_out:
                say(f"{left_out_note(left_out)}; the router routes without them")
            unlabeled = read.unlabeled
            args.data = args.from_log
        else:
            if not Path(args.data).is_file():
                raise ConfigError(f"--data {args.data}: no such file (an outcome table in JSONL)")
            table = load_outcomes(args.data)
        stages.advance()
        say(
            f"read {len(table):,} prompts, {len(table.models)} models, {len(table.tasks)} task labels "
            f"from {args.data}"
            + (f", and {len(unlabeled):,} logged prompts without outcomes" if unlabeled else "")
        )
        targets = {
            "target_strong_share": args.target_strong_share,
            "quality_floor": args.quality_floor,
            "max_cost_per_request": args.max_cost,
        }
        chosen = {name: value for name, value in targets.items() if value is not None}
        if args.router is not None:
            stages.stage("re-calibrating the operating point", 1)
            router = _recalibrated(args.router, table, chosen, say)
        else:
            counter = stages.counter("training (internal cross-validation, then the final fit)")
            router = train_router(
                table,
                method=args.method,
                seed=args.seed,
                on_progress=counter,
                unlabeled=unlabeled,
                shared_fit=shared_fit_for(len(table), len(table.models)),
            )
            if chosen:
                router = router.with_operating_point(router.operating_point_for(**chosen))
        router = replace(router, training=replace(router.training, source=str(args.data)))
        with replaced_output(args.out, "--out") as temporary:
            router.save(temporary)
    elapsed = time.perf_counter() - started
    _print_summary(router, args.out, elapsed, say)
    if args.json:
        summary = _summary(router, args.out, elapsed)
        if left_out is not None:
            summary["left_out"] = left_out
        print(json.dumps(summary))
    return 0


def _printer(as_json: bool) -> Callable[[str], None]:
    """`print` for people: to stdout, or to stderr when stdout carries `--json`."""
    stream = sys.stderr if as_json else sys.stdout
    return lambda line: print(line, file=stream)


def _recalibrated(path: Path, table: Any, targets: dict[str, float], say: Callable[[str], None]) -> Any:
    """The router saved at `path`, its operating point re-calibrated on `table` (live rows)."""
    from .._errors import ConfigError
    from ._calibration import calibrate
    from ._router_model import LearnedRouter

    if not targets:
        raise ConfigError(
            "re-calibrates the router's operating point: give --target-strong-share, --quality-floor or "
            "--max-cost",
            key="--router",
        )
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file (a router saved by gearshift train)", key="--router")
    router = LearnedRouter.load(path)
    missing = sorted(set(router.models) - set(table.models))
    if missing:
        raise ConfigError(
            f"the rows have no outcomes for the router's model '{missing[0]}' (they have: "
            f"{', '.join(table.models)})",
            key="--router",
        )
    say(f"re-calibrating the operating point of {path} on the rows; its quality predictor is kept")
    point = calibrate(
        router,
        table,
        target_strong_share=targets.get("target_strong_share"),
        quality_floor=targets.get("quality_floor"),
        max_cost_per_request=targets.get("max_cost_per_request"),
    )
    return router.with_operating_point(point)


def _print_summary(router: Any, out: Path, elapsed: float, say: Callable[[str], None]) -> None:
    training = router.training
    say(f"models, cheapest first: {', '.join(_model_line(router, i) for i in range(len(router.models)))}")
    if training.scores:
        say(
            f"internal {training.folds}-fold cross-validation (area under the cost-quality sweep, "
            "0.5 = random routing, 1 = oracle):"
        )
        for label, score in sorted(training.scores.items(), key=lambda item: -item[1]):
            mark = "  <- kept" if label.startswith(training.method) and _is_kept(training, label) else ""
            say(f"  {label:24s} {score:.3f}{mark}")
    else:
        say("too few prompts for internal cross-validation; the operating point is calibrated in-sample")
    say(f"method: {training.method} {training.details}")
    say(f"operating point: {router.operating_point.describe()}")
    say(f"saved {out} ({os.path.getsize(out):,} bytes) in {elapsed:.1f} s")


def _is_kept(training: Any, label: str) -> bool:
    details = training.details
    if training.method == "linear":
        return label == f"linear(C={details.get('C', 0):g})"
    if training.method == "knn":
        return label == f"knn(k={int(details.get('k', 0))})"
    if training.method == "topics":
        return label == f"topics(k={int(details.get('topics', 0))})"
    return label == f"blend(weight={details.get('weight', 0):g})"


def _model_line(router: Any, index: int) -> str:
    model = router.models[index]
    return f"{model} (${router.costs[index]:.6f}/request)" if router.costs_known else model


def _summary(router: Any, out: Path, elapsed: float) -> dict[str, Any]:
    point = router.operating_point
    return {
        "out": str(out),
        "rows": router.training.rows,
        "models": list(router.models),
        "costs": list(router.costs) if router.costs_known else None,
        "method": router.training.method,
        "cv_scores": router.training.scores,
        "operating_point": {
            "target": point.target,
            "tradeoff": point.tradeoff,
            "strong_share": point.strong_share,
            "quality": point.quality,
            "cost_per_request": point.cost_per_request,
            "met": point.met,
        },
        "seconds": round(elapsed, 2),
    }
