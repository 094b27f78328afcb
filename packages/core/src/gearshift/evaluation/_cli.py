"""`gearshift eval`: evaluate routing policies and the baselines on an outcome table.

```
gearshift eval [--dataset gsm8k|mmlu|mt-bench | --data FILE] [--train FILE] [--policy NAME ...]
               [--router ROUTER.json ...] [--folds K] [--seed N] [--json] [--plot FILE.png]
```

It prints one table (a row per policy: APGR, the chance APGR of a coin over its tiers, CPT(50%),
CPT(80%), AIQ, quality and cost at the operating point, decision latency); with `--json`, stdout
carries only one JSON object and the table goes to stderr. `--router` scores a router saved by
`gearshift train` as shipped (no training), under the name its path was given by; it repeats, so
routers trained on different data or for different targets are compared on one table. Given alone,
without `--policy`, only the saved routers and the baselines are evaluated: retraining the default
policies answers another question, and takes most of the time. `--folds` counts only where a learned
policy is cross-validated, and `--train` is refused where no learned policy is evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GearshiftError
from .._finite_numbers import finite
from ..datasets import ROUTELLM_DATASETS, OutcomeTable, load_outcomes, load_routellm
from ._names import POLICIES

if TYPE_CHECKING:
    from rich.console import Console

    from ..learning import LearnedRouter
    from ._evaluate import EvalReport, PolicyResult

__all__ = ["add_eval_parser", "run_eval"]

DEFAULT_POLICIES = ("learned", "scorer")
"""What `gearshift eval` evaluates, besides the baselines, when no --policy is given."""


def add_eval_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the `eval` sub-command to an argparse sub-parsers object; returns its parser."""
    from ..cli._numbers import whole_number

    parser: argparse.ArgumentParser = subcommands.add_parser(
        "eval",
        help="measure routing policies against the baselines on an outcome table (APGR, CPT, AIQ)",
        description="Evaluate routing policies and the baselines (random, always-cheapest, "
        "always-strongest, oracle, prompt length) on an outcome table: K-fold cross-validation, or "
        "training on --train and evaluating on the table.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=ROUTELLM_DATASETS, help="a bundled RouteLLM table")
    source.add_argument("--data", type=Path, metavar="FILE", help="an outcome table (JSONL, .gz allowed)")
    parser.add_argument(
        "--train", type=Path, metavar="FILE", help="train learned policies on this table instead of K folds"
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=POLICIES,
        metavar="NAME",
        help=f"a policy to evaluate: {', '.join(POLICIES)} (repeatable; default: "
        f"{' and '.join(DEFAULT_POLICIES)}); the baselines are always included",
    )
    parser.add_argument(
        "--router",
        action="append",
        type=Path,
        metavar="ROUTER.json",
        help="a router saved by gearshift train, scored as shipped at its own operating point "
        "(repeatable; without --policy, only the routers and the baselines are evaluated)",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed for folds, training and random (default 0)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print only the results as one JSON object (the table to stderr)"
    )
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="write the cost-quality chart here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _load(path: Path) -> OutcomeTable:
    try:
        return load_outcomes(path)
    except FileNotFoundError:
        raise GearshiftError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise GearshiftError(f"{path}: is a directory, not an outcome table") from None


def _load_routers(paths: list[Path] | None) -> dict[str, LearnedRouter]:
    """Each router file given with --router, by the path it was given as."""
    from ..learning import LearnedRouter

    routers = {}
    for path in dict.fromkeys(paths or ()):
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise GearshiftError(f"--router {path}: {what} (a router saved by gearshift train)")
        try:
            routers[str(path)] = LearnedRouter.load(path)
        except GearshiftError as error:  # it names the file; say which option read it
            raise GearshiftError(f"--router {error}") from None
    return routers


def run_eval(args: argparse.Namespace) -> int:
    """Run `gearshift eval` with parsed arguments; returns the exit code (2 for a bad input)."""
    # numpy and the evaluation code load only when `eval` runs, not whenever the parser is built.
    from ..cli._output import Stages, check_output, human_console, replaced_output
    from ._evaluate import evaluate

    try:
        check_output(args.plot, "--plot", reads={"--data": args.data, "--train": args.train})
        for path in args.router or ():
            check_output(args.plot, "--plot", reads={"--router": path})
        table = load_routellm(args.dataset) if args.dataset else _load(args.data)
        train = _load(args.train) if args.train is not None else None
        routers = _load_routers(args.router)
        policies = args.policy or (() if routers else DEFAULT_POLICIES)
        with Stages(enabled=not args.no_progress) as stages:
            report = evaluate(
                table,
                policies=tuple(policies),
                folds=args.folds,
                train=train,
                seed=args.seed,
                routers=routers,
                on_progress=stages.counter("evaluating policies"),
            )
        plotted = None
        if args.plot is not None:
            from ._plot import plot_report

            name = args.dataset or args.data.name
            with replaced_output(args.plot, "--plot") as temporary:
                plot_report(report, temporary, title=f"gearshift eval: {name}")
            plotted = args.plot
    except GearshiftError as error:
        print(f"gearshift: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"gearshift: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    console = human_console(args.json)
    _print_table(report, args.dataset or str(args.data), console)
    if plotted is not None:
        console.print(f"chart written to {plotted}", highlight=False)
    if args.json:
        print(json.dumps(finite(report.to_dict())))
    return 0


def _num(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _cost(value: float | None, usd: bool) -> str:
    if value is None:
        return "-"
    return f"${value:.6f}" if usd else f"{value:.1%}"


def _latency(result: PolicyResult) -> str:
    if result.latency is None:
        return "-"
    return f"{result.latency.median_us:,.1f} / {result.latency.p99_us:,.1f}"


def _print_table(report: EvalReport, source: str, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    usd = report.costs_known
    # Only learned policies are cross-validated or trained on --train; the rest need no training.
    if report.folds:
        how = f", {report.folds}-fold cross-validation"
    elif report.train_rows:
        how = f", trained on {report.train_rows:,} rows"
    else:
        how = ""
    title = f"gearshift eval: {escape(source)}, {report.rows:,} prompts{how}"
    table = Table(title=title)
    columns = ["policy", "APGR", "chance APGR", "CPT(50%)", "CPT(80%)", "AIQ", "quality", "strong share"]
    if usd:
        columns.insert(7, "cost/request")
    for column in (*columns, "decision µs (median / p99)"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, result in report.policies.items():
        cells = [
            f"[dim]{escape(name)}[/dim]" if result.baseline else escape(name),
            _num(result.apgr, ".3f"),
            _num(result.chance_apgr, ".3f"),
            _num(result.cpt50, ".1f", "%"),
            _num(result.cpt80, ".1f", "%"),
            _num(result.aiq, ".3f"),
            _num(result.quality, ".3f"),
            _num(None if result.strong_share is None else 100 * result.strong_share, ".1f", "%"),
            _latency(result),
        ]
        if usd:
            cells.insert(7, _cost(result.cost, usd))
        table.add_row(*cells)
    console = console or Console(width=max(Console().width, 140))
    console.print(table)
    models = ", ".join(f"{m} {q:.3f} at {_cost(c, usd)}" for m, (c, q) in report.models.items())
    console.print(
        f"Single models (quality at cost): {models}. Quality and cost are at each policy's default "
        "operating point; CPT is the strong-call share"
        + (
            " (for more than two models: % of the cheapest-to-best cost range)"
            if len(report.models) > 2
            else ""
        )
        + f" that recovers 50%/80% of the quality gap. Evaluated in {report.seconds:.1f} s."
    )
    for note in report.notes:
        console.print(f"- {escape(note)}", highlight=False)
