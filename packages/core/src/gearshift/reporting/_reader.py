"""Reading a decision log for a report: JSONL or SQLite, from a time on, with errors that say where."""

from __future__ import annotations

import json
import json.scanner
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigError
from ..routing._records import SCHEMA_VERSION

__all__ = ["iter_log", "read_log"]

T = TypeVar("T")

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def iter_log(path: str | Path, *, since: float | None = None) -> Iterator[dict[str, Any]]:
    """The records of a JSONL or SQLite decision log with `ts >= since` (all without it), oldest first.

    A missing file, an unknown format, a line that is not UTF-8 or not a JSON object, a `ts` that is
    not a number and a record of a newer `schema` than this gearshift reads are each a `ConfigError`
    naming the file (and the line or row); nothing is skipped silently, except an unfinished last
    line (no newline yet) of a log a router is writing.
    """
    return (record for _, record in _placed(Path(path), since, "--log"))


def read_log(
    path: str | Path,
    use: Callable[[Iterator[dict[str, Any]]], T],
    *,
    since: float | None = None,
    key: str = "--log",
) -> T:
    """`use(records)` over `iter_log(path, since=since)`, where a record `use` cannot read (a field
    missing, or of the wrong type) is a `ConfigError` naming the file and that record's line or row,
    not a `KeyError` or `TypeError` from deep inside it. `key` is the option that named the log, for
    the error when there is none."""
    path = Path(path)
    placed = _placed(path, since, key)
    where: str | None = None

    def records() -> Iterator[dict[str, Any]]:
        nonlocal where
        for place, record in placed:
            where = place
            yield record
        where = None  # the rest of `use` works on what every record gave

    try:
        return use(records())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problem = f"no field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(
            f"{where or 'a record'} is not a decision-log record gearshift can read: {problem}",
            source=str(path),
        ) from None


def _placed(path: Path, since: float | None, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder, not a decision log", key=key)
    if not path.is_file():
        raise ConfigError(f"no decision log at {str(path)!r}", key=key)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl(path, since)
    if suffix in _SQLITE_SUFFIXES:
        return _sqlite(path, since)
    raise ConfigError(
        f"cannot tell the log format of {str(path)!r}: use a .jsonl, .db or .sqlite file", key=key
    )


def _jsonl(path: Path, since: float | None) -> Iterator[tuple[str, dict[str, Any]]]:
    # The C scanner first: `json.loads` adds two whitespace regexes per line, a third of the parse
    # time of a large log. Whatever the scanner does not take whole (blank lines, indentation, bad
    # JSON) goes through `json.loads`, which says what is wrong. Bytes, decoded line by line, so a
    # bad byte is reported on the line that holds it.
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not raw.endswith(b"\n"):  # the last line, cut inside a character by a live router
                    return
                raise ConfigError(
                    f"line {number} is not UTF-8 text ({exc.reason})", source=str(path)
                ) from None
            try:
                record, end = scan(line, 0)
                if line[end:].strip():
                    raise ValueError(line)
            except (StopIteration, ValueError):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    if not line.endswith("\n"):  # the last line, still being written by a live router
                        return
                    raise ConfigError(
                        f"line {number} is not JSON ({exc.args[0]})", source=str(path)
                    ) from None
            if not isinstance(record, dict):
                raise ConfigError(f"line {number} is not a JSON object", source=str(path))
            place = f"line {number}"
            _check(record, place, path)
            if since is not None and not record.get("ts", 0) >= since:
                continue
            yield place, record


def _check(record: dict[str, Any], where: str, path: Path) -> None:
    """Refuse a record this reader would misread: a newer schema, or a time that is not a number."""
    schema = record.get("schema", SCHEMA_VERSION)
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        raise ConfigError(
            f"{where} has decision-log schema {schema}, newer than this gearshift reads "
            f"(schema {SCHEMA_VERSION}): upgrade gearshift to read it",
            source=str(path),
        )
    ts = record.get("ts", 0)
    if not isinstance(ts, (int, float)) or isinstance(ts, bool):
        raise ConfigError(f"{where}: ts must be a number (Unix seconds), got {ts!r}", source=str(path))


def _sqlite(path: Path, since: float | None) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        # A URI made by pathlib, so a '#' or '?' in the name is part of the name (in a hand-made
        # `file:` URI it ends the path, and SQLite would open, even create, another file). Read-write,
        # though only read: the last connection to close then folds the WAL back and removes the
        # -wal and -shm files, which a read-only one cannot do.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
        query = "SELECT id, data FROM records"
        rows = db.execute(
            query + " ORDER BY id" if since is None else query + " WHERE ts >= ? ORDER BY id",
            () if since is None else (since,),
        )
    except sqlite3.Error as exc:
        raise ConfigError(f"not a gearshift decision log: {exc}", source=str(path)) from None
    loads = json.loads
    try:
        for row_id, data in rows:
            try:
                record = loads(data)
            except ValueError as exc:
                raise ConfigError(f"row id {row_id} is not JSON ({exc.args[0]})", source=str(path)) from None
            if not isinstance(record, dict):
                raise ConfigError(f"row id {row_id} is not a JSON object", source=str(path))
            place = f"row id {row_id}"
            _check(record, place, path)
            yield place, record
    finally:
        db.close()
