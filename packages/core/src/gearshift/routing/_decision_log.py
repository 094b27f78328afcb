"""The decision log: one structured record per routing decision and per provider attempt.

Records are plain JSON-ready dicts. Writing never blocks the caller's event loop: `write` puts the
record on a queue and one background thread appends batches to the file (JSONL) or database (SQLite).
Prompt and answer text are left out unless `include_prompts=True`; secrets are never part of a record.

With `max_age_days`, records older than that are deleted when the log opens and then hourly by the
writer thread (the record schema is in `docs/decision-log.md`).

`holds_call` says whether the log has a record of a routed call, so feedback on an answer given before
a restart is taken and a made-up id refused: the ids written since the log opened are kept in memory
(the latest `_CALLS_REMEMBERED`), older ones are looked up, at a bounded cost (an index in SQLite, the
last `JSONLDecisionLog.lookback_bytes` of a JSONL file).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._errors import ConfigError
from .._finite_numbers import finite
from .._torn_lines import drop_torn_line
from ..config._data_dir import prepare_folder

__all__ = [
    "DecisionLog",
    "JSONLDecisionLog",
    "SQLiteDecisionLog",
    "open_decision_log",
    "read_records",
]

logger = logging.getLogger("gearshift")

_STOP = object()
_PRUNE_EVERY_S = 3600.0
_CALLS_REMEMBERED = 10_000
_READ_BLOCK = 1024 * 1024


@runtime_checkable
class DecisionLog(Protocol):
    """Where the router writes its records."""

    include_prompts: bool
    """Whether records may carry prompt text."""

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue one record; must not block on I/O."""
        ...

    def flush(self) -> None:
        """Wait until every queued record is written."""
        ...

    def close(self) -> None:
        """Flush and release the file or database."""
        ...

    # A log may also have `holds_call(request_id) -> bool` (the built-in ones do): whether it has a
    # record of that routed call. Feedback on a call it does not hold is refused; without the method,
    # every request id is taken. It is not part of the protocol, so logs written before it still are.


class _BackgroundLog:
    """A queue drained by one writer thread in batches; subclasses say how a batch is stored."""

    def __init__(
        self, path: str | Path, *, include_prompts: bool = False, max_age_days: float | None = None
    ) -> None:
        if max_age_days is not None and not max_age_days > 0:
            raise ValueError(f"max_age_days must be positive, got {max_age_days!r}")
        self.path = Path(path)
        self.include_prompts = include_prompts
        self.max_age_days = max_age_days
        prepare_folder(self.path)
        self._queue: queue.Queue[object] = queue.Queue()
        self._calls: OrderedDict[str, None] = OrderedDict()  # calls written since opening, latest last
        self._calls_lock = threading.Lock()
        self._closed = False
        self._open()
        self._pruned_at = time.monotonic()
        self.prune()
        self._thread = threading.Thread(target=self._drain, name="gearshift-decision-log", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        raise NotImplementedError

    def _store(self, batch: list[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _drop_before(self, cutoff: float) -> None:
        raise NotImplementedError

    def prune(self) -> None:
        """Delete the records older than `max_age_days` (nothing without it).

        Called when the log opens and hourly from the writer thread; call it yourself only before
        the first `write` or after `flush`, as the writer thread owns the file once records flow."""
        if self.max_age_days is not None:
            self._drop_before(time.time() - self.max_age_days * 86400.0)
        self._pruned_at = time.monotonic()

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue one record for the writer thread."""
        if self._closed:
            raise RuntimeError(f"the decision log {self.path} is closed")
        request_id = record.get("request_id")
        if isinstance(request_id, str) and record.get("kind") != "feedback":
            with self._calls_lock:
                self._calls[request_id] = None
                self._calls.move_to_end(request_id)
                if len(self._calls) > _CALLS_REMEMBERED:
                    self._calls.popitem(last=False)
        self._queue.put(dict(record))

    def holds_call(self, request_id: str) -> bool:
        """Whether the log has a record (other than feedback) of the routed call `request_id`: one
        written since it opened, or one already stored (by an earlier router, or another process),
        within what retention kept and, for JSONL, within its last `lookback_bytes`. A store that
        cannot be read is taken to hold it (with a warning on the `gearshift` logger): a score is
        better kept beside no call than lost for a read error."""
        with self._calls_lock:
            if request_id in self._calls:
                return True
        # What was written since opening is in `_calls` (queued or stored); the store is read only
        # for older records, so no flush is needed.
        try:
            return self._stored_call(request_id)
        except (OSError, sqlite3.Error) as exc:
            logger.warning(
                "decision log %s: could not look call %s up, taken as held: %r", self.path, request_id, exc
            )
            return True

    def _stored_call(self, request_id: str) -> bool:
        raise NotImplementedError

    def flush(self) -> None:
        """Block until every record queued so far is stored."""
        self._queue.join()

    def close(self) -> None:
        """Store what is queued, stop the writer thread and release the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _drain(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while True:  # take whatever else is waiting, so a burst becomes one write
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [item for item in items if item is not _STOP]
            stopping = len(batch) != len(items)
            try:
                self._store_and_prune(batch)  # type: ignore[arg-type]
            finally:
                for _ in items:
                    self._queue.task_done()
        self._release()

    def _store_and_prune(self, batch: list[Mapping[str, Any]]) -> None:
        # The writer thread must outlive a failure: dead, it would leave `flush` and `close` waiting
        # for ever on records nobody takes, and the caller's every later record unwritten.
        if batch:
            try:
                self._store(batch)
            except Exception as exc:
                logger.error(
                    "decision log %s: %d records could not be written: %r", self.path, len(batch), exc
                )
        if self.max_age_days is not None and time.monotonic() - self._pruned_at > _PRUNE_EVERY_S:
            try:
                self.prune()
            except Exception as exc:
                self._pruned_at = time.monotonic()  # tried again in an hour, not on every batch
                logger.error("decision log %s: deleting old records failed, all are kept: %r", self.path, exc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, include_prompts={self.include_prompts})"


class JSONLDecisionLog(_BackgroundLog):
    """Appends one JSON object per line to a file."""

    lookback_bytes = 64 * 1024 * 1024
    """How far back from its end the file is searched for a call's records (`holds_call`)."""

    def _open(self) -> None:
        # A router killed mid-write left its last line unfinished: appended to, it would become a line
        # no reader can parse, so it goes (the record it held was never whole).
        dropped = drop_torn_line(self.path)
        if dropped:
            logger.warning(
                "decision log %s: dropped %d bytes of an unfinished last line (a router stopped while "
                "writing it)",
                self.path,
                dropped,
            )
        self._file = self.path.open("a", encoding="utf-8")

    def _store(self, batch: list[Mapping[str, Any]]) -> None:
        self._file.write("".join(_json(r, ensure_ascii=False) + "\n" for r in batch))
        self._file.flush()

    def _release(self) -> None:
        self._file.close()

    def _drop_before(self, cutoff: float) -> None:
        # Records are appended in time order, so the first line says whether anything is old enough;
        # only then is the file rewritten (to a temporary file, swapped in atomically). A line that is
        # not a record with a time (not JSON, not even UTF-8) is kept: retention never loses what it
        # cannot read, and `gearshift report` names it. Bytes, so no line can stop the reading.
        with self.path.open("rb") as lines:
            first = next((ts for ts in map(_line_ts, lines) if ts is not None), None)
        if first is None or first >= cutoff:
            return
        self._file.close()
        kept = self.path.with_name(self.path.name + ".pruning")
        try:
            with self.path.open("rb") as lines, kept.open("wb") as out:
                out.writelines(line for line in lines if line.strip() and not _older(line, cutoff))
            os.replace(kept, self.path)
        finally:
            kept.unlink(missing_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def _stored_call(self, request_id: str) -> bool:
        # From the end back, block by block (a call asked about is most often a recent one), for the
        # field as `_json` writes it; the line it is on must be a record of the call, not feedback.
        # A block's first line may have begun in the block before it: it is carried over to that one.
        field = b'"request_id": ' + json.dumps(request_id, ensure_ascii=False).encode("utf-8")
        try:
            with self.path.open("rb") as file:
                end = file.seek(0, os.SEEK_END)
                floor = max(0, end - self.lookback_bytes)
                carried = b""
                while end > floor:
                    start = max(floor, end - _READ_BLOCK)
                    file.seek(start)
                    block = file.read(end - start) + carried
                    cut = 0 if start == floor else block.find(b"\n") + 1 or len(block)
                    if any(_is_call_record(line) for line in _lines_with(block[cut:], field)):
                        return True
                    carried, end = block[:cut], start
        except FileNotFoundError:  # nothing was stored yet
            return False
        return False


class SQLiteDecisionLog(_BackgroundLog):
    """Stores records in a SQLite table `records(id, ts, kind, request_id, data)`; `data` is the JSON."""

    def _open(self) -> None:
        # check_same_thread is off because __init__ opens the connection and the writer thread alone
        # uses it afterwards.
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, ts REAL, kind TEXT, "
            "request_id TEXT, data TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS records_ts ON records (ts)")
        # Feedback looks a call up by its id; without the index that read would grow with the log.
        self._db.execute("CREATE INDEX IF NOT EXISTS records_request_id ON records (request_id)")
        self._db.commit()

    def _store(self, batch: list[Mapping[str, Any]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO records (ts, kind, request_id, data) VALUES (?, ?, ?, ?)",
                [
                    (r.get("ts"), r.get("kind"), r.get("request_id"), _json(r, ensure_ascii=True))
                    for r in batch
                ],
            )

    def _release(self) -> None:
        self._db.close()

    def _drop_before(self, cutoff: float) -> None:
        with self._db:
            self._db.execute("DELETE FROM records WHERE ts < ?", (cutoff,))

    def _stored_call(self, request_id: str) -> bool:
        # A connection of its own: the writer thread's is in use by that thread.
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT 1 FROM records WHERE request_id = ? AND kind IS NOT 'feedback' LIMIT 1", (request_id,)
            ).fetchone()
        finally:
            db.close()
        return row is not None


def _json(record: Mapping[str, Any], *, ensure_ascii: bool) -> str:
    """`record` as JSON every reader takes: a NaN or infinite number (a cost a provider's odd usage
    made undefined) is written as null, and the record kept."""
    try:
        return json.dumps(record, default=str, ensure_ascii=ensure_ascii, allow_nan=False)
    except ValueError:
        return json.dumps(finite(record), default=str, ensure_ascii=ensure_ascii, allow_nan=False)


def _line_ts(line: bytes) -> float | None:
    """The `ts` of a JSONL line, or None when the line is not a record with a time."""
    try:
        ts = json.loads(line.decode("utf-8")).get("ts")
    except (ValueError, AttributeError):  # ValueError: not UTF-8, or not JSON
        return None
    return float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None


def _lines_with(block: bytes, field: bytes) -> Iterator[bytes]:
    """The lines of `block` that hold `field`."""
    at = block.find(field)
    while at >= 0:
        start = block.rfind(b"\n", 0, at) + 1
        end = block.find(b"\n", at)
        end = len(block) if end < 0 else end
        yield block[start:end]
        at = block.find(field, end)


def _is_call_record(line: bytes) -> bool:
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:  # cut by the lookback's edge, or not a record
        return False
    return isinstance(record, dict) and record.get("kind") != "feedback"


def _older(line: bytes, cutoff: float) -> bool:
    ts = _line_ts(line)
    return ts is not None and ts < cutoff


def open_decision_log(
    path: str | Path,
    *,
    include_prompts: bool = False,
    source: str | None = None,
    max_age_days: float | None = None,
) -> DecisionLog:
    """A JSONL log for `*.jsonl`, a SQLite log for `*.db`, `*.sqlite` or `*.sqlite3`.

    `max_age_days` (the `log.max_age_days` setting) deletes older records on opening and hourly.

    A path that cannot be opened (a folder, no permission, not a SQLite file) is a `ConfigError`
    on `log.path`, naming `source` (the config file) when given.
    """
    suffix = Path(path).suffix.lower()
    kind: type[_BackgroundLog]
    if suffix == ".jsonl":
        kind = JSONLDecisionLog
    elif suffix in (".db", ".sqlite", ".sqlite3"):
        kind = SQLiteDecisionLog
    else:
        raise ConfigError(
            f"cannot tell the log format of {str(path)!r}: use a .jsonl, .db or .sqlite file",
            source=source,
            key="log.path",
        )
    try:
        return kind(path, include_prompts=include_prompts, max_age_days=max_age_days)
    except (OSError, sqlite3.Error) as exc:
        reason = "it is a folder" if Path(path).is_dir() else getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"cannot open the decision log {str(path)!r}: {reason}", source=source, key="log.path"
        ) from None


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every record of a JSONL or SQLite decision log, oldest first."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        return
    db = sqlite3.connect(path)
    try:
        for (data,) in db.execute("SELECT data FROM records ORDER BY id"):
            yield json.loads(data)
    finally:
        db.close()
