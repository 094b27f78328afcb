"""Reading and writing outcome tables as JSONL, one prompt per line.

```json
{"id": "gsm8k-17", "task": "gsm8k", "prompt": "text, or a list of {role, content} messages",
 "outcomes": {"model-a": {"score": 1.0, "cost_usd": 0.0031, "response": "..."},
              "model-b": {"score": 0.0, "cost_usd": 0.0002}}}
```

`score` is required and in [0, 1]; `cost_usd`, `input_tokens`, `output_tokens` and `response` are
optional. Unknown fields are refused rather than dropped, so a misspelt `cost_usd` cannot silently
lose data. A path ending in `.gz` is read and written gzip-compressed. Every error names the file, the
line and the field, e.g. `outcomes.jsonl line 17: outcomes.model-b.score must be a number in [0, 1],
got 'abc'`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .._errors import GearshiftError
from .._messages import Message
from ._agent_runs import RunFieldError, parse_run, run_json
from ._outcomes import OUTCOME_FIELDS, PROMPT_ROLES, Outcome, OutcomeRow, OutcomeTable, OutcomeTableError

__all__ = ["json_lines", "keyed_lines", "load_outcomes", "save_outcomes"]

T = TypeVar("T")

_ROW_FIELDS = ("id", "task", "prompt", "outcomes")


class _FieldError(Exception):
    """A problem in one line; the loader adds the file and line number."""


def _describe(value: object) -> str:
    """A value as the error message shows it: JSON containers by kind, scalars as written."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return repr(value)


def _parse_prompt(value: object) -> str | tuple[Message, ...]:
    if isinstance(value, str):
        if not value.strip():
            raise _FieldError("prompt is empty")
        return value
    if not isinstance(value, list) or not value:
        raise _FieldError(
            "prompt must be a string or a non-empty list of {role, content} messages, "
            f"got {_describe(value)}"
        )
    messages = []
    for index, item in enumerate(value):
        where = f"prompt[{index}]"
        if not isinstance(item, dict):
            raise _FieldError(f"{where} must be an object with role and content, got {_describe(item)}")
        unknown = sorted(set(item) - {"role", "content"})
        if unknown:
            raise _FieldError(f"{where} has unknown field '{unknown[0]}' (a message has role and content)")
        role, content = item.get("role"), item.get("content")
        if role not in PROMPT_ROLES:
            raise _FieldError(f"{where}.role must be one of {', '.join(PROMPT_ROLES)}, got {_describe(role)}")
        if not isinstance(content, str):
            raise _FieldError(f"{where}.content must be a string, got {_describe(content)}")
        messages.append(Message(role, content))
    if not any(m.role == "user" for m in messages):
        raise _FieldError("prompt has no user message")
    return tuple(messages)


def _parse_outcome(model: str, value: object) -> Outcome:
    where = f"outcomes.{model}"
    if not isinstance(value, dict):
        raise _FieldError(f"{where} must be an object with at least a score, got {_describe(value)}")
    unknown = sorted(set(value) - set(OUTCOME_FIELDS) - {"messages"})
    if unknown:
        raise _FieldError(
            f"{where} has unknown field '{unknown[0]}' (an outcome has {', '.join(OUTCOME_FIELDS)}, "
            "and in an agent table messages)"
        )
    if "score" not in value:
        raise _FieldError(f"{where}.score is missing")
    for name, check in OUTCOME_FIELDS.items():
        problem = check(value.get(name))
        if problem is not None:
            raise _FieldError(f"{where}.{name} {problem}")
    fields = {name: value[name] for name in OUTCOME_FIELDS if name in value}
    if "messages" in value:
        try:
            fields["run"] = parse_run(value["messages"], f"{where}.messages")
        except RunFieldError as exc:
            raise _FieldError(str(exc)) from None
    return Outcome(**fields)


def _parse_row(data: object) -> OutcomeRow:
    if not isinstance(data, dict):
        raise _FieldError(f"each line must be a JSON object, got {_describe(data)}")
    unknown = sorted(set(data) - set(_ROW_FIELDS))
    if unknown:
        raise _FieldError(f"unknown field '{unknown[0]}' (a row has {', '.join(_ROW_FIELDS)})")
    missing = [name for name in _ROW_FIELDS if name not in data]
    if missing:
        raise _FieldError(f"missing field '{missing[0]}' (a row has {', '.join(_ROW_FIELDS)})")
    row_id, task, outcomes = data["id"], data["task"], data["outcomes"]
    if not isinstance(row_id, str) or not row_id:
        raise _FieldError(f"id must be a non-empty string, got {_describe(row_id)}")
    if not isinstance(task, str) or not task:
        raise _FieldError(f"task must be a non-empty string, got {_describe(task)}")
    prompt = _parse_prompt(data["prompt"])
    if not isinstance(outcomes, dict):
        raise _FieldError(
            f"outcomes must be an object mapping model ids to outcomes, got {_describe(outcomes)}"
        )
    if not outcomes:
        raise _FieldError("outcomes must name at least one model, got {}")
    parsed: dict[str, Outcome] = {}
    for model, value in outcomes.items():
        if not model:
            raise _FieldError("outcomes has an empty model id")
        parsed[model] = _parse_outcome(model, value)
    return OutcomeRow(row_id, task, prompt, parsed)


def _read_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    # Bytes, decoded line by line, so a bad byte is reported on the line that holds it.
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            yield from enumerate(handle, start=1)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise OutcomeTableError(f"is not a valid gzip file ({exc})", path=path) from None


def json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """The JSON value of every line of a JSONL file that is not blank, with its line number; a line
    that is not UTF-8 text or not JSON is an `OutcomeTableError` naming the file, the line and where."""
    for number, raw in _read_lines(path):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OutcomeTableError(
                f"is not UTF-8 text ({exc.reason} at byte {exc.start + 1})", path=path, line=number
            ) from None
        try:
            # Without its newline: a line cut short was "at column 1" (of json's own next line).
            value = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise OutcomeTableError(
                f"not valid JSON: {exc.msg} at column {exc.colno}", path=path, line=number
            ) from None
        yield number, value


def keyed_lines(
    path: str | os.PathLike[str], parse: Callable[[Any, int], T], key: Callable[[T], str]
) -> Iterator[tuple[int, T]]:
    """`json_lines` read by `parse` (a line's value and number), each with its line number. A problem
    `parse` raises (`_FieldError`, `GearshiftError`) or a `key` used twice is an `OutcomeTableError`
    naming the file and the line."""
    first_line: dict[str, int] = {}
    for number, value in json_lines(path):
        try:
            item = parse(value, number)
        except (_FieldError, GearshiftError) as exc:
            raise OutcomeTableError(str(exc), path=path, line=number) from None
        seen = first_line.setdefault(key(item), number)
        if seen != number:
            raise OutcomeTableError(
                f"id {key(item)!r} was already used on line {seen}", path=path, line=number
            )
        yield number, item


def load_outcomes(path: str | os.PathLike[str]) -> OutcomeTable:
    """Read an outcome table from a JSONL file (gzip-compressed when the name ends in `.gz`).

    Blank lines are skipped. Raises `OutcomeTableError` naming the file, line and field for anything
    malformed, including a file without rows and an id used twice.
    """
    return load_outcome_lines(path)[0]


def load_outcome_lines(path: str | os.PathLike[str]) -> tuple[OutcomeTable, tuple[int, ...]]:
    """`load_outcomes`, with the line number of each row (for checks that span rows)."""
    lines = list(keyed_lines(path, lambda value, _: _parse_row(value), lambda row: row.id))
    if not lines:
        raise OutcomeTableError("holds no rows; an outcome table needs at least one prompt", path=path)
    return OutcomeTable([row for _, row in lines]), tuple(number for number, _ in lines)


def _row_json(row: OutcomeRow) -> dict[str, Any]:
    prompt: str | list[dict[str, str]]
    if isinstance(row.prompt, str):
        prompt = row.prompt
    else:
        prompt = [{"role": m.role, "content": m.text} for m in row.prompt]
    outcomes: dict[str, Mapping[str, Any]] = {}
    for model, o in row.outcomes.items():
        fields = {name: getattr(o, name) for name in OUTCOME_FIELDS if getattr(o, name) is not None}
        if o.run is not None:
            fields["messages"] = run_json(o.run)
        outcomes[model] = fields
    return {"id": row.id, "task": row.task, "prompt": prompt, "outcomes": outcomes}


def save_outcomes(table: OutcomeTable, path: str | os.PathLike[str]) -> None:
    """Write `table` as JSONL (gzip-compressed when the name ends in `.gz`); `load_outcomes` reads it back.

    Fields that are None are left out. Images in prompt messages are not part of the format and are
    dropped; their text is kept.
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as handle:
        for row in table:
            handle.write(json.dumps(_row_json(row), ensure_ascii=False) + "\n")
