"""`gearshift batch IN.jsonl OUT.jsonl [--concurrency N] [--cascade]`: a batch through the router, resumable.

IN holds one request a line: `{"id": "q1", "prompt": "text, or a list of {role, content} messages"}`,
with optional `max_tokens` and `agent_id` (`id` defaults to the line number); or `{"id": "q1",
"messages": [...], "tools": [...]}`, a Chat Completions body; or a line of OpenAI's Batch API input
(`custom_id`, `method`, `url`, `body`). A body's `model` is `auto` (routed), `tier-N` or a model id of
the config. OUT is an append-only journal: one line per finished stage of an item (`stage` routed,
cheap or strong; `accepted` true for the item's final answer; `request` the digest of its IN line).
Run the same command again after an interruption: items with a final line are skipped, items
whose cheap answer the gate already rejected go straight to the strong model, and a cheap answer
whose check was cut off (`checked` false) is checked again, the judge's answers it had kept given
back first, so nothing received is paid for twice; an id whose IN line changed since it was answered
is refused. A call cut off has a line with its `error` and what it was charged; a routed one (no
`--cascade`) also keeps the answers it had received (`kept`), which answer the resumed call first.
The summary (escalation rate, cost, the always-strongest estimate) covers the items of IN, with what
earlier runs wrote to OUT for them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._errors import GearshiftError
from .._messages import ChatResponse, Message, ToolCall, Usage
from .._torn_lines import drop_torn_line
from ..config._config_file import CONFIG_HELP
from ..datasets._outcomes import OutcomeTableError
from ..routing._batch import BatchItem, BatchResult, BatchSummary, StageRecord, stage_record, summarize_batch
from ..routing._kept_answers import KeptAnswer
from ._batch_lines import BatchLine, read_batch

__all__ = ["Journal", "add_batch_parser", "read_batch", "read_journal", "run_batch_cli"]

_CANCEL_WAIT_S = 10.0
_CACHE_FIELDS = ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
"""A result line's cached-input counts, in `Usage`'s order after its input and output tokens."""


def add_batch_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `gearshift batch` to the CLI."""
    batch = commands.add_parser(
        "batch",
        help="answer a JSONL file of requests (resumable), optionally as a batched cascade",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("input", type=Path, help="requests, one JSON object a line")
    batch.add_argument("output", type=Path, help="results journal (appended to; re-run to resume)")
    batch.add_argument("--concurrency", type=int, default=8, help="calls in flight at once (default 8)")
    batch.add_argument(
        "--cascade",
        action="store_true",
        help="cheapest tier first; only answers the quality gate rejects go to the top tier",
    )
    batch.add_argument("--config", type=Path, help=CONFIG_HELP)
    batch.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    batch.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_batch_cli(args: argparse.Namespace) -> int:
    """Run `gearshift batch`; returns the exit code (1 when some items have no answer)."""
    from rich.console import Console

    from .._bridge import run_sync
    from ..config._config import load_config
    from ..providers._factory import missing_keys
    from ..routing._router import Router
    from ._output import Stages, check_output

    if args.concurrency < 1:
        raise GearshiftError(f"--concurrency must be 1 or more, got {args.concurrency}")
    check_output(args.output, "OUT", reads={"IN": args.input})
    config = load_config(args.config)
    missing = missing_keys(config)
    if missing and set(missing) >= {spec.provider for spec in config.models}:
        wanted = ", ".join(f"{variable} (provider '{name}')" for name, variable in missing.items())
        raise GearshiftError(
            f"no API key for any model of the config: set {wanted}, or pass --config with a "
            "gearshift.toml that points at a local server (see examples/ollama.toml)"
        )
    router = Router.from_config(config)  # a line's `model` is read against its models
    lines = list(read_batch(args.input, router.registry))
    earlier = read_journal(args.output)
    _check_unchanged(lines, earlier, args.input, args.output)
    digests = {line.item.id: line.digest for line in lines}
    items = [line.item for line in lines]
    todo = [
        BatchItem(
            item.id,
            item.request,
            item.context,
            escalate=item.id in earlier.rejected,
            answer=earlier.unchecked[item.id][0] if item.id in earlier.unchecked else None,
            asked=earlier.unchecked[item.id][1] if item.id in earlier.unchecked else (),
            kept=earlier.kept.get(item.id, ()),
        )
        for item in items
        if item.id not in earlier.done
    ]
    console = Console(stderr=True)
    if len(todo) < len(items):
        console.print(
            f"resuming: {len(items) - len(todo)} of {len(items)} items already answered in {args.output}"
        )
    # The summary is of this batch: lines OUT holds for ids IN no longer has are not among its items.
    records = [record for record in earlier.records if record.id in digests]
    try:
        drop_torn_line(args.output)  # glued to a torn line, the first new line would be unreadable
        # Unbuffered: a line is on disk once written, and nothing is left to fail again at close.
        journal = args.output.open("ab", buffering=0)
    except OSError as exc:
        raise GearshiftError(f"OUT {args.output}: cannot write it ({exc.strerror or exc})") from None
    with journal, Stages(enabled=not args.no_progress) as stages:
        stages.stage("answering", len(todo))

        def on_result(result: BatchResult) -> None:
            try:
                _write(journal, result, digests[result.id])
            except OSError as exc:  # a full disk: the batch stops, its calls in flight are cancelled
                raise GearshiftError(f"OUT {args.output}: cannot write it ({exc.strerror or exc})") from None
            records.append(stage_record(result))
            if result.accepted or result.error is not None:
                stages.advance()

        finished = threading.Event()

        async def work() -> None:
            try:
                async with router:
                    await router.abatch(
                        todo, concurrency=args.concurrency, cascade=args.cascade, on_result=on_result
                    )
            finally:
                finished.set()

        try:
            run_sync(work())
        except KeyboardInterrupt:
            # Ctrl-C cancels the calls in flight on the bridge loop: wait for them to end (and record
            # how they ended) before the journal closes under them.
            finished.wait(_CANCEL_WAIT_S)
            raise
    summary = summarize_batch(records, router.registry)
    _print_summary(summary, router.registry.strongest.id, as_json=args.json)
    return 1 if summary.failed else 0


@dataclass(frozen=True, slots=True)
class Journal:
    """What earlier runs wrote to OUT."""

    done: set[str]  # ids with a final answer
    rejected: set[str]  # ids whose cheap answer was rejected, and that have no final answer yet
    # ids whose cheap answer was received but its check cut off (and nothing since): the answer, and
    # what the gate had received from its models
    unchecked: dict[str, tuple[ChatResponse, tuple[ChatResponse, ...]]]
    # ids whose routed call was cut off or failed (and nothing since): the answers it had received
    kept: dict[str, tuple[KeptAnswer, ...]]
    records: list[StageRecord]  # every stage's figures
    requests: dict[str, str]  # id -> digest of the request its answers were to (lines that name it)


def read_journal(path: Path) -> Journal:
    """What an earlier run wrote. A torn last line (no newline: the run was killed while writing it) is
    ignored: that stage is done again."""
    done: set[str] = set()
    rejected: set[str] = set()
    unchecked: dict[str, tuple[ChatResponse, tuple[ChatResponse, ...]]] = {}
    kept: dict[str, tuple[KeptAnswer, ...]] = {}
    records: list[StageRecord] = []
    requests: dict[str, str] = {}
    if not path.exists():
        return Journal(done, rejected, unchecked, kept, records, requests)
    lines = path.read_bytes().split(b"\n")
    lines.pop()  # what follows the last newline: nothing, or the torn line
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
            record = StageRecord(
                str(row["id"]),
                row["stage"],
                bool(row["accepted"]),
                row.get("error") is not None,
                float(row["cost_usd"]),
                _usage(row),
                bool(row.get("escalated", False)),
            )
            if record.failed and record.stage == "routed":  # what its call had received, if anything
                kept[record.id] = tuple(
                    KeptAnswer(str(one["model"]), str(one["question"]), _answer(one, _usage(one)))
                    for one in row.get("kept", ())
                )
            checked = row.get("checked", True) is not False
            if not checked and not record.failed:  # a cheap answer whose check was cut off
                asked = tuple(_answer(one, Usage()) for one in row.get("asked", ()))
                unchecked[record.id] = (_answer(row, record.usage), asked)
        # ValueError: bad JSON, bytes or numbers; AttributeError: a kept answer that is not an object
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise OutcomeTableError(f"not a gearshift batch result ({exc})", path=path, line=number) from None
        records.append(record)
        if record.failed:
            continue
        if isinstance(row.get("request"), str):
            requests[record.id] = row["request"]
        if checked:
            unchecked.pop(record.id, None)  # checked since, or answered
        if record.accepted:
            done.add(record.id)
        elif record.stage == "cheap" and checked:
            rejected.add(record.id)
    return Journal(done, rejected - done, unchecked, kept, records, requests)


def _check_unchanged(lines: list[BatchLine], earlier: Journal, source: Path, out: Path) -> None:
    """Refuse, before any call, to resume an item whose line asks something else than what OUT
    answered under its id: its old answer would have been kept as the answer to the new request."""
    for line in lines:
        answered = earlier.requests.get(line.item.id)
        if answered is not None and answered != line.digest:
            raise OutcomeTableError(
                f"id {line.item.id!r} was answered in {out} for another request (this line has changed "
                "since); give the changed request a new id, or write to another OUT",
                path=source,
                line=line.number,
            )


def _write(journal: IO[bytes], result: BatchResult, request: str) -> None:
    """Append `result`'s line to the journal, opened unbuffered: a line on disk is a stage that will not
    be paid for again. A write cut short (a full disk) raises, leaving a torn line the next run drops."""
    record = stage_record(result)
    answer = result.response.response if result.response is not None else None
    row: dict[str, Any] = {
        "id": result.id,
        "stage": result.stage,
        "accepted": result.accepted,
        **(_answer_row(answer) if answer is not None else {"model": None, "text": None}),
        "cost_usd": result.cost_usd,
        **_usage_row(record.usage),
        "request": request,  # the digest of its IN line: a resumed run checks it is still the same
    }
    if not result.checked:  # a resumed run checks the answer, first with what the gate was told
        row["checked"] = False
        row["asked"] = [_answer_row(one) for one in result.asked]
    if result.kept:  # a resumed run is answered from these first
        row["kept"] = [
            {**_answer_row(one.response), "question": one.question, **_usage_row(one.response.usage)}
            for one in result.kept
        ]
    if record.escalated:
        row["escalated"] = True
    if result.reason:
        row["reason"] = result.reason
    if result.error is not None:
        row["error"] = result.error
    line = memoryview((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    while line:
        written = journal.write(line)  # a raw file may write part of it (a disk filling up)
        line = line[written:]


def _answer_row(answer: ChatResponse) -> dict[str, Any]:
    """An answer's fields in a journal line: enough to check it again in a resumed run."""
    row: dict[str, Any] = {
        "model": answer.model_id,
        "text": answer.text,
        "finish_reason": answer.finish_reason,
    }
    if answer.tool_calls:
        row["tool_calls"] = [
            {"id": call.id, "name": call.name, "arguments": call.arguments} for call in answer.tool_calls
        ]
    return row


def _usage_row(usage: Usage) -> dict[str, int]:
    """A line's token counts."""
    counts = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    return {**counts, **{name: getattr(usage, name) for name in _CACHE_FIELDS}}


def _usage(row: dict[str, Any]) -> Usage:
    """The token counts `_usage_row` wrote."""
    return Usage(
        int(row["input_tokens"]),
        int(row["output_tokens"]),
        *(int(row.get(name, 0)) for name in _CACHE_FIELDS),  # absent before they were kept
    )


def _answer(row: dict[str, Any], usage: Usage) -> ChatResponse:
    """The answer a journal line holds (`_answer_row`), as the gate is given it."""
    calls = tuple(
        ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"])) for c in row.get("tool_calls", ())
    )
    message = Message.assistant(str(row["text"] or ""), calls)
    reason = row.get("finish_reason")
    return ChatResponse(
        message, str(row["model"]), str(row["model"]), usage, None if reason is None else str(reason)
    )


def _print_summary(summary: BatchSummary, strongest: str, *, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "items": summary.items,
                    "answered": summary.answered,
                    "failed": summary.failed,
                    "escalated": summary.escalated,
                    "escalation_rate": summary.escalation_rate,
                    "cost_usd": summary.cost_usd,
                    "always_strongest_usd": summary.strongest_cost_usd,
                    "savings": summary.savings,
                },
                indent=2,
            )
        )
        return
    print(f"items:            {summary.items} ({summary.answered} answered, {summary.failed} failed)")
    print(f"escalated:        {summary.escalated} ({summary.escalation_rate:.1%} of answered)")
    print(f"cost:             ${summary.cost_usd:.6f}")
    print(f"always {strongest}: ${summary.strongest_cost_usd:.6f} (estimated on the same tokens)")
    print(f"saved:            {summary.savings:.1%}")
    if summary.failed:
        print("some items have no answer: run the same command again to retry them", file=sys.stderr)
