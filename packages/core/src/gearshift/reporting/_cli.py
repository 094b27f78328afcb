"""`gearshift report`: what the router did, from its decision log.

    gearshift report [--log PATH] [--since DATE] [--agent ID] [--json] [--html FILE] [--config TOML]

Without `--log` the log is `log.path` of gearshift.toml. `--json` prints only the report's JSON;
`--html FILE` also writes one self-contained page with the tables and plots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from .._finite_numbers import finite
from .._surrogates import has_lone_surrogate
from ..config._config_file import CONFIG_HELP
from ._money import usd
from ._wording import MODELS_SUM, TIERS_SUM, count, drift_weeks

__all__ = ["add_export_parser", "add_report_parser", "parse_since", "run_export", "run_report"]

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([dhw])$")
_UNIT_SECONDS = {"h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def add_report_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the `report` sub-command to the CLI's sub-parsers; returns its parser."""
    report: argparse.ArgumentParser = subcommands.add_parser(
        "report",
        help="summarise the decision log: shares, cost and savings, escalations, errors, drift",
        description="Read the decision log (JSONL or SQLite) and report requests, share and cost per "
        "model and tier, escalation rate by cause, fallbacks and errors per provider, budget refusals, "
        "latency, cost against always calling the strongest model, per agent, and week-over-week drift.",
    )
    report.add_argument("--log", type=Path, help="the decision log (default: log.path of gearshift.toml)")
    report.add_argument("--config", type=Path, help=CONFIG_HELP)
    report.add_argument(
        "--since",
        help="only records from then on: a date (2026-11-30), a UTC time (2026-11-30T08:00) or 7d, 12h, 2w",
    )
    report.add_argument("--agent", help="only this agent's requests")
    report.add_argument("--json", action="store_true", help="print only the report as one JSON object")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write the report as one HTML page")
    return report


def add_export_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the `export-outcomes` sub-command; returns its parser."""
    from ..cli._numbers import whole_number

    export: argparse.ArgumentParser = subcommands.add_parser(
        "export-outcomes",
        help="write the outcome rows of the decision log's shadow pairs and feedback (JSONL)",
        description="Build an outcome table from the shadow pairs and feedback in the decision log "
        "(the rows `gearshift train --from-log` trains on: every pair, whatever its models, and the "
        "feedback rows of those models) and write it as JSONL for inspection.",
    )
    export.add_argument("--log", type=Path, required=True, help="the decision log (JSONL or SQLite)")
    export.add_argument("--out", type=Path, required=True, help="where to write the rows (JSONL)")
    export.add_argument(
        "--min-rows",
        type=whole_number(1),
        default=50,
        help="leave out a model scored on fewer rows, as `gearshift train --from-log --min-rows` does "
        "(default 50)",
    )
    export.add_argument("--json", action="store_true", help="print only a JSON summary")
    return export


def run_export(args: argparse.Namespace) -> int:
    """Run `gearshift export-outcomes`; returns the exit code."""
    from ..cli._output import check_output, replaced_output
    from ._log_outcomes import left_out_note, outcomes_from_log, parse_rows
    from ._reader import read_log

    check_output(args.out, "--out", reads={"--log": args.log})
    read = read_log(args.log, outcomes_from_log)
    chosen = read.select(args.min_rows)
    parse_rows(chosen.rows, args.log)  # what it writes, `train --data` must read
    with replaced_output(args.out, "--out") as temporary, temporary.open("w", encoding="utf-8") as out:
        out.writelines(_jsonl_line(row) for row in chosen.rows)
    summary = {
        "out": str(args.out),
        "rows": len(chosen.rows),
        "pairs": chosen.pairs,
        "models": list(chosen.models),
        "left_out": chosen.left_out,
        "shadow_records": read.shadow_records,
        "feedback_records": read.feedback_records,
        "without_prompt": read.without_prompt,
        "feedback_without_call": read.feedback_without_call,
        "feedback_without_answer": read.feedback_without_answer,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"wrote {summary['rows']:,} outcome rows ({summary['pairs']:,} with two or more models) "
            f"to {args.out}; "
            f"{read.shadow_records:,} shadow and {read.feedback_records:,} feedback records read, "
            f"{read.without_prompt:,} left out for want of a prompt"
            f"{left_out_note(chosen.left_out, lead='; ')}"
        )
    return 0


def _jsonl_line(row: dict[str, Any]) -> str:
    """`row` as one JSON line, as written where it can be: a lone surrogate (half of a cut emoji, which
    JSON escapes allow) cannot be written as UTF-8, so such a row keeps its text as JSON escapes."""
    line = json.dumps(row, ensure_ascii=False)
    if has_lone_surrogate(line):
        line = json.dumps(row)
    return line + "\n"


def parse_since(text: str, *, now: float | None = None) -> float:
    """A Unix time from `--since`: an ISO date or time (UTC unless it names an offset) or an age."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        return (time.time() if now is None else now) - float(relative.group(1)) * _UNIT_SECONDS[
            relative.group(2)
        ]
    stamp = text.strip()
    if stamp[-1:] in ("Z", "z"):  # UTC as ISO 8601 writes it: Python 3.10's fromisoformat lacks it
        stamp = stamp[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a date: use 2026-11-30, 2026-11-30T08:00 or an age like 7d, 12h, 2w",
            key="--since",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def run_report(args: argparse.Namespace) -> int:
    """Run `gearshift report`; returns the exit code."""
    from ..cli._output import check_output, replaced_output
    from ._aggregate import build_report
    from ._reader import read_log

    check_output(args.html, "--html")
    path = args.log
    if path is None:
        from ..config._config import load_config

        path = load_config(args.config).log.path
        if path is None:
            raise ConfigError(
                "no decision log: pass --log PATH or set [log] path in gearshift.toml", key="--log"
            )
    check_output(args.html, "--html", reads={"--log": path})
    since = parse_since(args.since) if args.since is not None else None
    report = read_log(path, lambda records: build_report(records, agent=args.agent), since=since)
    report["log"]["path"] = str(path)
    if args.agent is not None and not report["requests"]:
        # A misspelt id would otherwise read as an idle agent. On stderr: `--json` prints only JSON.
        print(
            f"gearshift: no requests from agent {args.agent!r} in {path}"
            + (f" since {args.since}" if args.since is not None else "")
            + f"; agents with requests: {', '.join(report['log']['agents']) or 'none'}",
            file=sys.stderr,
        )
    if args.html:
        from ._html import render_html

        page = render_html(report)
        with replaced_output(args.html, "--html") as temporary:
            temporary.write_text(page, encoding="utf-8")
    if args.json:
        print(json.dumps(finite(report), indent=2))  # a NaN a record holds is null, not invalid JSON
        return 0
    _print_text(report)
    if args.html:
        print(f"\nwrote {args.html}")
    return 0


def _print_text(report: dict[str, Any]) -> None:
    cost = report["cost"]
    share = cost["savings_share"]
    print(f"decision log: {report['log']['path']} ({count(report['log']['records'], 'record')})")
    errors = report["escalation"]["handover_errors"]
    by_errors = f", {errors:,} of them by a hand-over's error" if errors else ""
    print(f"requests:     {report['requests']:,} ({report['failed']:,} unanswered{by_errors})")
    print(
        f"cost:         {usd(cost['cost_usd'])}; always-strongest {usd(cost['always_strongest_usd'])}; "
        f"saved {usd(cost['savings_usd'])}" + (f" ({share:.1%})" if share is not None else "")
    )
    causes = ", ".join(f"{c} {v['rate']:.1%}" for c, v in report["escalation"]["by_cause"].items())
    failed = report["escalation"]["failed_handovers"]
    unanswered = f"; {count(failed, 'hand-over')} found no stronger answer" if failed else ""
    print(f"escalations:  {report['escalation']['rate']:.1%} of answered requests ({causes}){unanswered}")
    budget = report["budget"]
    print(f"budgets:      {budget['refusals']:,} refused, {count(budget['overruns'], 'overrun')}")
    shadow = report["shadow"]
    if shadow["pairs"]:
        line = f"shadow:       {count(shadow['pairs'], 'pair')}, {usd(shadow['cost_usd'])} spent on shadows"
        if shadow["upward_pairs"]:
            line += (
                f"; {shadow['upward_pairs']:,} upward: judged quality {shadow['quality']:.3f} against "
                f"{shadow['reference_quality']:.3f} for the reference"
                + (f" ({shadow['quality_kept']:.1%} kept)" if shadow["quality_kept"] is not None else "")
            )
        if shadow["downward_pairs"]:
            line += (
                f"; {shadow['downward_pairs']:,} downward: the cheapest model did as well on "
                f"{shadow['over_routed']:.1%} (over-routed)"
            )
        print(line)
    print(f"models:       cost is {MODELS_SUM}")
    for model, v in report["models"].items():
        p50 = "-" if v["latency_p50_ms"] is None else f"{v['latency_p50_ms']:.0f} ms"
        p95 = "-" if v["latency_p95_ms"] is None else f"{v['latency_p95_ms']:.0f} ms"
        print(
            f"  {model:<28} tier {v['tier']}  {v['share']:6.1%}  {usd(v['cost_usd'])}  p50 {p50}  p95 {p95}"
        )
    print(f"tiers:        cost is {TIERS_SUM}")
    for tier, v in report["tiers"].items():
        print(
            f"  tier {tier:<23} {v['share']:6.1%}  {usd(v['cost_usd'])}  "
            f"{usd(v['cost_per_request_usd'])} a request"
        )
    print("providers:")
    for provider, v in report["providers"].items():
        print(
            f"  {provider:<28} {count(v['attempts'], 'attempt')}  errors {v['error_rate']:.1%}  "
            f"fallbacks {v['fallback_rate']:.1%}"
        )
    drift = report["drift"]
    if drift is not None:
        print(
            f"drift:        {drift_weeks(drift)}: escalation rate "
            f"{drift['escalation_rate_change'] * 100:+.1f} points"
        )
