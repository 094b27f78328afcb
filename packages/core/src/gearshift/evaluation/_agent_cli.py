"""`gearshift eval-agents` and `gearshift train-escalation`: step-aware routing measured on agent runs.

```
gearshift eval-agents (--dataset tau-retail | --data FILE) [--train FILE] [--folds K] [--policy NAME ...]
                      [--seed N] [--task-prior auto|on|off] [--json] [--plot FILE.png]
gearshift train-escalation --data FILE --out ESCALATION.json
                           [--target-handover-share X | --success-floor S] [--task-prior auto|on|off]
```

`eval-agents` prints a table (per policy: success, cost per task, cost per successful task, hand-over
rate, 95% bootstrap intervals over tasks) and what was estimated; with `--json` it prints one JSON
object and nothing else on stdout (the notes go to stderr). `--data` and `--train` also accept
`tau-retail`, the bundled runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GearshiftError
from .._finite_numbers import finite

if TYPE_CHECKING:
    from ..datasets import AgentRuns
    from ._agent_eval import AgentEvalReport

__all__ = ["add_agent_parsers", "run_eval_agents", "run_train_escalation"]

BUNDLED = "tau-retail"
_POLICIES = ("scorer-steps", "learned-escalation", "task-router+escalation")


def add_agent_parsers(subcommands: Any) -> None:
    """Add `eval-agents` and `train-escalation` to an argparse sub-parsers object."""
    from ..cli._numbers import number_in, whole_number

    evaluate: argparse.ArgumentParser = subcommands.add_parser(
        "eval-agents",
        help="replay routing policies over logged agent runs (success and cost per task)",
        description="Replay the baselines (always-weak, always-strong, oracle, task-router) and step-aware "
        "policies over logged runs of a cheap and a strong model: K-fold cross-fitting by task, or "
        "training on --train and replaying --data.",
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=(BUNDLED,), help="the bundled tau-bench retail runs")
    source.add_argument("--data", metavar="FILE", help="an agent outcome table (JSONL, .gz allowed)")
    evaluate.add_argument(
        "--train", metavar="FILE", help="fit learned parts on this table instead of K folds"
    )
    evaluate.add_argument(
        "--folds", type=int, default=5, help="cross-fitting folds, split by task (default 5)"
    )
    evaluate.add_argument(
        "--policy",
        action="append",
        choices=_POLICIES,
        metavar="NAME",
        help=f"a step-aware policy: {', '.join(_POLICIES)} (repeatable; default: all); "
        "the baselines are always included",
    )
    evaluate.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed for folds and bootstrap (default 0)"
    )
    _add_prior_option(evaluate)
    _add_pair_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.add_argument("--plot", type=Path, metavar="FILE.png", help="draw success against cost per task")

    train: argparse.ArgumentParser = subcommands.add_parser(
        "train-escalation",
        help="learn when a cheap model must hand a step up, from logged agent runs",
        description="Train the learned escalation on an agent outcome table and write its JSON artifact.",
    )
    train.add_argument("--data", required=True, metavar="FILE", help=f"an agent outcome table, or {BUNDLED}")
    train.add_argument("--out", required=True, type=Path, metavar="ESCALATION.json", help="where to write it")
    target = train.add_mutually_exclusive_group()
    target.add_argument(
        "--target-handover-share",
        type=number_in(0.0, 1.0),
        metavar="X",
        help="share of tasks to hand to the strong model",
    )
    target.add_argument(
        "--success-floor",
        type=number_in(0.0, 1.0),
        metavar="S",
        help="keep this share of always-strong's success on the training runs (default 0.95)",
    )
    _add_prior_option(train)
    _add_pair_options(train)


_PRIOR = {"auto": None, "on": True, "off": False}


def _add_prior_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-prior",
        choices=tuple(_PRIOR),
        default="auto",
        help="the task router's prior on the opening prompt as an escalation feature: on, off, or auto "
        "(default: tried from 40 tasks, kept when it lowers the held-out log-loss on the training tasks)",
    )


def _add_pair_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weak", metavar="ID", help="the cheap model of the table (default: its runs cost least on average)"
    )
    parser.add_argument(
        "--strong",
        metavar="ID",
        help="the strong model (default: the other one; of several, the most successful)",
    )


def _runs(name: str, args: argparse.Namespace) -> AgentRuns:
    from ..datasets import load_agent_runs, load_tau_retail

    if name == BUNDLED:
        runs = load_tau_retail()
        for option, model in (("--weak", args.weak), ("--strong", args.strong)):
            if model is not None and model != (runs.weak if option == "--weak" else runs.strong):
                raise GearshiftError(
                    f"{option} {model}: the bundled {BUNDLED} runs compare {runs.weak} (cheap) with "
                    f"{runs.strong} (strong); --weak and --strong pick the models of a --data table"
                )
        return runs
    try:
        return load_agent_runs(name, weak=args.weak, strong=args.strong)
    except FileNotFoundError:
        raise GearshiftError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise GearshiftError(f"{name}: is a directory, not an agent outcome table") from None


def _guarded(run: Callable[[], int]) -> int:
    """`run()`, with gearshift's and the file system's errors as one line on stderr and exit code 2."""
    try:
        return run()
    except GearshiftError as error:
        print(f"gearshift: error: {error}", file=sys.stderr)
    except OSError as error:
        print(f"gearshift: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
    return 2


def run_eval_agents(args: argparse.Namespace) -> int:
    """Run `gearshift eval-agents`; returns the exit code (2 for bad input)."""
    return _guarded(lambda: _eval_agents(args))


def _eval_agents(args: argparse.Namespace) -> int:
    from ..cli._output import Stages, check_output, replaced_output
    from ._agent_eval import evaluate_agents

    check_output(args.plot, "--plot", reads={"--data": args.data, "--train": args.train})
    runs = _runs(args.dataset or args.data, args)
    train = _runs(args.train, args) if args.train else None
    with Stages(enabled=not args.no_progress) as stages:
        report = evaluate_agents(
            runs,
            policies=args.policy,
            train=train,
            folds=args.folds,
            seed=args.seed,
            prior=_PRIOR[args.task_prior],
            on_progress=stages.counter("replaying agent runs"),
        )
    plotted = None
    if args.plot is not None:
        with replaced_output(args.plot, "--plot") as temporary:
            plot_agents(report, temporary)
        plotted = args.plot
    if args.json:
        for note in (report.method, *report.notes):
            print(f"gearshift: {note}", file=sys.stderr)
        print(json.dumps(finite(report.to_dict())))
        return 0
    print_agent_table(report, args.dataset or args.data)
    if plotted is not None:
        print(f"chart written to {plotted}")
    return 0


def print_agent_table(report: AgentEvalReport, source: str) -> None:
    """The human-readable report of an agent evaluation."""
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    strong = report.policies["always-strong"]
    pair = f"{report.weak} -> {report.strong}"
    table = Table(title=f"gearshift eval-agents: {escape(source)}, {report.tasks} tasks, {pair}")
    for column in (
        "policy",
        "success [95% CI]",
        "cost/task [95% CI]",
        "cost/success",
        "hand-over",
        "vs strong",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    (strong_lo, strong_hi), _ = strong.intervals()
    overlaps = []
    for name, replay in report.policies.items():
        (s_lo, s_hi), (c_lo, c_hi) = replay.intervals()
        per_success = replay.cost_per_success
        if name != "always-strong" and s_hi >= strong_lo and s_lo <= strong_hi:
            overlaps.append(name)
        table.add_row(
            escape(name),
            f"{replay.success_rate:.3f} [{s_lo:.3f}, {s_hi:.3f}]",
            f"${replay.cost_per_task:.4f} [{c_lo:.4f}, {c_hi:.4f}]",
            "-" if per_success is None else f"${per_success:.4f}",
            f"{replay.handover_rate:.0%}",
            f"{replay.success_rate / strong.success_rate:.0%} success at "
            f"{replay.cost_per_task / strong.cost_per_task:.0%} cost"
            if strong.success_rate > 0 and strong.cost_per_task > 0
            else "-",
        )
    console = Console(width=max(Console().width, 140))
    console.print(table)
    console.print(
        f"How: {report.method}. Restart rule: a hand-over at step k costs the cheap run's first k steps "
        "plus the strong run, and succeeds as the strong run did."
    )
    if overlaps:
        console.print(f"Success intervals overlapping always-strong's: {', '.join(overlaps)}.")
    differ = float(
        np.mean(
            np.abs(report.policies["always-weak"].success - report.policies["always-strong"].success) >= 0.5
        )
    )
    agree = report.self_disagreement
    if agree is None:
        console.print(
            "Self-disagreement (two runs of one model on one task) cannot be measured: the table holds one "
            f"run per model and task. The two models' runs disagree on {differ:.0%} of the tasks; part of "
            "that is each model's own run-to-run variation, which one trial per model cannot separate."
        )
    else:
        console.print(
            f"Self-disagreement over the {agree.tasks} tasks run more than once ({agree.runs} rows): "
            f"{report.weak}'s runs of the same task disagree on {agree.weak:.0%} of them, {report.strong}'s "
            f"on {agree.strong:.0%}. The two models' runs disagree on {differ:.0%} of the rows."
        )
    for note in report.notes:
        console.print(f"Note: {escape(note)}")


def plot_agents(report: AgentEvalReport, path: Path) -> Path:
    """Success against cost per task: every policy's point and curve, the two models as labelled points."""
    from ._plot import _pyplot

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 6), dpi=110)
    try:
        for name, replay in report.policies.items():
            point = (replay.cost_per_task, replay.success_rate)
            if name in ("always-weak", "always-strong"):
                model = report.weak if name == "always-weak" else report.strong
                axes.plot(*point, "s", color="black", markersize=7)
                axes.annotate(model, point, textcoords="offset points", xytext=(6, -12), fontsize=8)
                continue
            if replay.curve:
                costs, successes = zip(*sorted(replay.curve), strict=True)
                (line,) = axes.plot(costs, successes, "-", linewidth=1.4, label=name)
                axes.plot(*point, "o", color=line.get_color(), markersize=7)
            else:
                axes.plot(*point, "*" if name == "oracle" else "o", markersize=11, label=name)
        axes.set_xlabel("mean cost per task (USD)")
        axes.set_ylabel("task success")
        axes.set_title(f"Step-aware routing on {report.tasks} agent tasks ({report.weak} -> {report.strong})")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right", fontsize=9)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path


def run_train_escalation(args: argparse.Namespace) -> int:
    """Run `gearshift train-escalation`; returns the exit code (2 for bad input)."""
    return _guarded(lambda: _train_escalation(args))


def _train_escalation(args: argparse.Namespace) -> int:
    from ..cli._output import check_output, replaced_output
    from ..escalation import train_escalation

    check_output(args.out, "--out", reads={"--data": args.data})
    runs = _runs(args.data, args)
    model = train_escalation(
        runs,
        success_floor=args.success_floor,
        target_handover_share=args.target_handover_share,
        prior=_PRIOR[args.task_prior],
    )
    with replaced_output(args.out, "--out") as temporary:
        model.save(temporary)
    for note in runs.notes:
        print(f"note: {note}")
    print(
        f"trained on {model.training.tasks} tasks ({model.training.steps} steps of {runs.weak}; "
        f"{model.training.positive_share:.0%} of tasks where {runs.weak} failed)"
    )
    print(f"threshold {model.threshold:.3f}: {model.target}")
    print(
        "task prior: "
        + ("kept (the task router's gain on the opening prompt is a feature)" if model.prior else "not used")
    )
    print(f"wrote {args.out}")
    return 0
