"""`gearshift budget show` and `gearshift budget reset`: read and clear the ledger from a shell.

```
gearshift budget show [--key K] [--config PATH] [--json]
gearshift budget reset --key K [--yes] [--config PATH]
```

Both read the `[budgets]` section of the config file (`--config`, `$GEARSHIFT_CONFIG` or
`./gearshift.toml`; a section without `store` keeps the SQLite ledger in the user's data folder).
Without the section no call is charged to a budget, so neither opens a ledger: `show` says there are
no budgets and `reset` (nothing to forget) exits 1; a SQLite ledger no call has created yet is not
created by either (`show` says nothing was recorded yet, `reset` exits 1). `show` lists every key
with spend or a reservation, plus every exact key a limit names, and the spend still waiting in the
ledger's journal (commits the store could not take, recorded by the next call that finds it
answering); `reset` asks `y/N` unless `--yes`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._bridge import run_sync
from ..config._config import load_config
from ..config._config_file import CONFIG_HELP
from ._journal import JournaledSpend
from ._ledger import BudgetLedger
from ._pacing import format_usd
from ._settings import load_budgets_config
from ._status import LimitStatus
from ._store import KeyUsage

__all__ = ["add_budget_parser", "run_budget"]


def add_budget_parser(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `budget show` and `budget reset` to the `gearshift` parser's sub-commands."""
    budget = subcommands.add_parser("budget", help="show or reset budget spend")
    actions = budget.add_subparsers(dest="budget_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="spend, reservations and what is left, per key and limit")
    show.add_argument("--key", help="only this spend key (e.g. agent:researcher)")
    show.add_argument("--config", type=Path, help=CONFIG_HELP)
    show.add_argument("--json", action="store_true", help="print one JSON object")
    reset = actions.add_parser("reset", help="forget a key's spend and reservations")
    reset.add_argument("--key", required=True, help="the spend key to reset (e.g. run:42)")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument("--config", type=Path, help=CONFIG_HELP)
    return budget


def run_budget(args: argparse.Namespace) -> int:
    """Run `budget show` or `budget reset`; returns the exit code. Errors are `GearshiftError`s.

    The whole config file is validated as `load_config` validates it, so `gearshift budget` refuses a
    file every other command refuses (an unknown key, a wrong type, anywhere in it), rather than
    reading a ledger the file may not mean."""
    whole = load_config(args.config)
    if whole.budgets is None:
        # No call is charged to a budget then (the router keeps no ledger), so opening the default
        # one only created an empty budgets.db to report "no spend" from.
        show = args.budget_command == "show"
        return _no_budgets(whole.file, show=show, as_json=getattr(args, "json", False))
    config, source = load_budgets_config(args.config)
    ledger = BudgetLedger.from_config(config, source=source)
    # A SQLite ledger no call has written yet does not exist: reading it, or resetting a key in it,
    # created the file (schema and WAL) to report it empty. The limits are shown over an empty
    # in-memory store instead, and nothing is created.
    unwritten = _unwritten_file(ledger)
    reader = (
        BudgetLedger.from_config(config.model_copy(update={"store": "memory://"})) if unwritten else ledger
    )
    try:
        if args.budget_command == "show":
            return _show(ledger, reader, unwritten, key=args.key, as_json=args.json)
        if unwritten is not None:
            print(f"gearshift: nothing is recorded under key {args.key!r}: {unwritten}", file=sys.stderr)
            return 1
        return _reset(ledger, key=args.key, confirmed=args.yes)
    finally:
        run_sync(ledger.aclose())
        if reader is not ledger:
            run_sync(reader.aclose())


def _unwritten_file(ledger: BudgetLedger) -> str | None:
    """Why nothing can be recorded in the ledger yet, when its SQLite file does not exist (None: it
    does, or the store is not a file)."""
    from ._sqlite import SQLiteStore

    store = ledger.store
    if not isinstance(store, SQLiteStore) or store.path.exists():
        return None
    return f"{store.url} does not exist yet; the first budgeted call creates it"


def _no_budgets(file: Path | None, *, show: bool, as_json: bool) -> int:
    where = "no config file was found, so there is" if file is None else f"{file} has"
    line = (
        f"No budgets: {where} no [budgets] section, so no call is charged to any key. "
        "Add one to keep spend and set limits."
    )
    if not show:
        print(line, file=sys.stderr)
        return 1
    print(json.dumps({"store": None, "keys": [], "journaled": None}) if as_json else line)
    return 0


def _show(
    ledger: BudgetLedger, reader: BudgetLedger, unwritten: str | None, *, key: str | None, as_json: bool
) -> int:
    """Show `ledger`'s spend, read through `reader`: the ledger itself, or, when its file does not
    exist yet (`unwritten` says so), an empty one over the same limits."""
    journaled = [s for s in run_sync(ledger.journaled()) if key is None or key in s.keys]
    try:
        rows = run_sync(_read(reader, key))
    except Exception:
        if journaled:  # the store is down: what the journal keeps is all there is to say
            print(_journal_line(ledger, journaled), file=sys.stderr)
        raise
    if as_json:
        shown = {"store": ledger.store.url, "keys": [_row_dict(*row) for row in rows]}
        print(json.dumps({**shown, "journaled": _journal_dict(ledger, journaled)}, indent=2))
        return 0
    if unwritten is not None:
        print(f"No spend recorded yet: {unwritten}.")
    elif not rows:
        print(f"No spend recorded in {ledger.store.url}" + (f" for key {key!r}." if key else "."))
    if not rows:
        if journaled:
            print(_journal_line(ledger, journaled))
        return 0
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(f"gearshift budgets · {ledger.store.url}"), box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in ("key", "limit", "window", "mode", "spent", "reserved", "left"):
        table.add_column(
            column, no_wrap=column == "key", justify="left" if column in ("key", "mode") else "right"
        )
    for usage, statuses in rows:
        if not statuses:  # dollars only, to fit 80 columns; --json has the tokens too
            spent, held = format_usd(usage.spent_usd), format_usd(usage.reserved_usd)
            table.add_row(escape(usage.key), "none", "lifetime", "-", spent, held, "-")
        for s in statuses:
            usd, tokens = s.limit_usd is not None, s.limit_tokens is not None
            table.add_row(
                escape(s.key),
                _amount(s.limit_usd or 0.0, s.limit_tokens or 0, usd, tokens),
                s.window,
                s.mode.value,
                _amount(s.spent_usd, s.spent_tokens, usd, tokens),
                _amount(s.reserved_usd, s.reserved_tokens, usd, tokens),
                _amount(s.remaining_usd or 0.0, s.remaining_tokens or 0, usd, tokens),
            )
    Console().print(table)
    if journaled:
        print(_journal_line(ledger, journaled))
    return 0


def _journal_dict(ledger: BudgetLedger, journaled: list[JournaledSpend]) -> dict[str, Any]:
    """Spend kept in the journal, not yet in the store: in total and per key."""
    per_key: dict[str, float] = {}
    for spend in journaled:
        for key in spend.keys:
            per_key[key] = per_key.get(key, 0.0) + spend.usd
    return {
        "path": str(ledger.journal.path),
        "calls": len(journaled),
        "usd": sum(spend.usd for spend in journaled),
        "tokens": sum(spend.tokens for spend in journaled),
        "keys": dict(sorted(per_key.items())),
    }


def _journal_line(ledger: BudgetLedger, journaled: list[JournaledSpend]) -> str:
    summary = _journal_dict(ledger, journaled)
    calls = f"{summary['calls']} call" + ("s" if summary["calls"] != 1 else "")
    return (
        f"Not yet in the store: {format_usd(summary['usd'])} over {calls} "
        f"({', '.join(summary['keys'])}), kept in {summary['path']}; the next call that finds the "
        "store answering records it."
    )


async def _read(ledger: BudgetLedger, key: str | None) -> list[tuple[KeyUsage, tuple[LimitStatus, ...]]]:
    """(lifetime usage, limit statuses) of each key to show, in key order."""
    if key is not None:
        keys: list[str] = [key]
    else:
        named = {limit.key for limit in ledger.limits if not limit.is_pattern}
        keys = sorted(set(await ledger.keys()) | named)
    usage = await ledger.usage(keys)
    return [(used, (await ledger.status([used.key])).limits) for used in usage]


def _row_dict(usage: KeyUsage, statuses: tuple[LimitStatus, ...]) -> dict[str, Any]:
    return {
        "key": usage.key,
        "spent_usd": usage.spent_usd,
        "spent_tokens": usage.spent_tokens,
        "reserved_usd": usage.reserved_usd,
        "reserved_tokens": usage.reserved_tokens,
        "limits": [s.to_dict() for s in statuses],
    }


def _amount(usd: float, tokens: int, show_usd: bool, show_tokens: bool) -> str:
    parts = [format_usd(usd) if show_usd else "", _tokens(tokens) if show_tokens else ""]
    return " + ".join(p for p in parts if p)


def _tokens(count: int) -> str:
    """`900 tok`, `45.9k tok`, `1.2M tok`: short enough for a table cell."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size:
            return f"{count / size:.1f}".rstrip("0").rstrip(".") + f"{suffix} tok"
    return f"{count} tok"


def _reset(ledger: BudgetLedger, *, key: str, confirmed: bool) -> int:
    known = run_sync(ledger.keys())
    if key not in known:
        print(f"gearshift: nothing is recorded under key {key!r} in {ledger.store.url}", file=sys.stderr)
        return 1
    if not confirmed and not _confirm(f"Forget all spend and reservations of {key!r}? [y/N] "):
        print("Nothing was reset.")
        return 1
    run_sync(ledger.reset(key))
    print(f"Reset {key!r}.")
    return 0


def _confirm(question: str) -> bool:
    print(question, end="", flush=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):  # end of input: nobody said yes
        print()
    return answer.strip().lower() in ("y", "yes")
