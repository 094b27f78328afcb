"""Feedback: a score given to a routed call's answer after the fact, recorded in the decision log.

A user's thumbs up, an evaluator's grade or a test's verdict on an answer is the label live traffic
lacks: `Router.feedback` writes it as a `feedback` record joined to the call by its request id, so
`gearshift report` can average it and `gearshift export-outcomes` can turn it into outcome rows.
A request id the log holds no call of (mistyped, made up, or deleted by retention) is refused: its
score would land on nothing. The log is asked, not the router's memory, so an answer given before a
restart (or by another process sharing the log) can still be scored.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from .._errors import ConfigError, InvalidRequestError
from ._decision_log import DecisionLog, JSONLDecisionLog, SQLiteDecisionLog
from ._records import feedback_record

__all__ = ["feedback_of", "record_feedback", "request_id_of"]

_MAX_COMMENT = 2000


def feedback_of(request_id: str, score: float, *, source: str, comment: str | None) -> dict[str, Any]:
    """The feedback record, once every value is checked: a non-empty request id, a score in [0, 1]
    (a bool counts as 0 or 1), a non-empty source, and a comment of at most 2,000 characters."""
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidRequestError(f"feedback needs the request id of a routed call, got {request_id!r}")
    if isinstance(score, bool):
        score = float(score)
    if not isinstance(score, (int, float)) or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise InvalidRequestError(f"feedback score must be a number in [0, 1], got {score!r}")
    if not isinstance(source, str) or not source.strip():
        raise InvalidRequestError(f"feedback source must name who scored (e.g. 'user'), got {source!r}")
    if comment is not None and (not isinstance(comment, str) or len(comment) > _MAX_COMMENT):
        raise InvalidRequestError(f"feedback comment must be text of at most {_MAX_COMMENT} characters")
    return feedback_record(
        request_id=request_id, ts=time.time(), score=float(score), source=source, comment=comment
    )


def record_feedback(
    log: DecisionLog | None, request_id: str, score: float, *, source: str, comment: str | None
) -> None:
    """Write one feedback record to `log`; without a log there is nowhere to keep it, and a call the
    log has no record of has nothing to score."""
    record = feedback_of(request_id, score, source=source, comment=comment)
    if log is None:
        raise ConfigError(
            "feedback is kept in the decision log: set [log] path in gearshift.toml", key="log.path"
        )
    holds_call = getattr(log, "holds_call", None)  # a log of the caller's own may not say
    if holds_call is not None and not holds_call(request_id):
        raise InvalidRequestError(f"request_id {request_id!r} {_not_found(log)}")
    log.write(record)


def _not_found(log: DecisionLog) -> str:
    said = "is not the id of a call in the decision log"
    if isinstance(log, (JSONLDecisionLog, SQLiteDecisionLog)):
        said += f" {log.path}"
        if isinstance(log, JSONLDecisionLog) and _size(log.path) > log.lookback_bytes:
            said += f" (its last {log.lookback_bytes / 2**20:g} MiB, where a call is looked for)"
        if log.max_age_days is not None:
            said += f"; it deletes records older than {log.max_age_days:g} days"
    return said + ": pass the request_id that came with an answer (an escalate result's, a RoutedResponse's)"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def request_id_of(metadata: Any) -> str | None:
    """The request id in an adapter's routing record (`{"gearshift": {"request_id": ...}}`), or None."""
    if isinstance(metadata, dict):
        record = metadata.get("gearshift")
        if isinstance(record, dict) and isinstance(record.get("request_id"), str):
            return str(record["request_id"])
    return None
