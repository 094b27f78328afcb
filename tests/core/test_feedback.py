"""`Router.feedback`: a score for a routed call's answer, kept in the decision log and in the report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gearshift import ConfigError, InvalidRequestError, Router, SignalScorer, default_registry, read_records
from gearshift.providers import OpenAIProvider
from gearshift.reporting import build_report
from gearshift.routing._decision_log import open_decision_log


def _router(tmp_path: Path | None) -> Router:
    registry = default_registry()
    providers = {p: OpenAIProvider(p, require_key=False) for p in {m.provider for m in registry}}
    log = open_decision_log(tmp_path / "log.jsonl") if tmp_path is not None else None
    return Router(registry, policy=SignalScorer(), providers=providers, decision_log=log)


def test_feedback_is_a_record_the_report_averages(tmp_path: Path) -> None:
    router = _router(tmp_path)
    router.feedback("req-1", 1.0)
    router.feedback("req-2", True, source="ci", comment="tests pass")
    router.feedback("req-3", 0.25, source="grader")
    router.close()
    records = list(read_records(tmp_path / "log.jsonl"))
    assert [(r["kind"], r["request_id"], r["score"], r["source"]) for r in records] == [
        ("feedback", "req-1", 1.0, "user"),
        ("feedback", "req-2", 1.0, "ci"),
        ("feedback", "req-3", 0.25, "grader"),
    ]
    assert records[1]["comment"] == "tests pass" and records[0]["schema"] == 1
    assert build_report(records)["feedback"] == {"count": 3, "mean_score": pytest.approx(0.75)}


@pytest.mark.parametrize(
    ("request_id", "score", "source", "match"),
    [
        ("", 1.0, "user", "request id"),
        ("r", 1.5, "user", r"\[0, 1\]"),
        ("r", -0.1, "user", r"\[0, 1\]"),
        ("r", math.nan, "user", r"\[0, 1\]"),
        ("r", "good", "user", r"\[0, 1\]"),
        ("r", 1.0, "", "source"),
    ],
)
def test_bad_feedback_says_what_is_wrong_and_records_nothing(
    tmp_path: Path, request_id: str, score: object, source: str, match: str
) -> None:
    router = _router(tmp_path)
    with pytest.raises(InvalidRequestError, match=match):
        router.feedback(request_id, score, source=source)  # type: ignore[arg-type]
    router.close()
    assert list(read_records(tmp_path / "log.jsonl")) == []


def test_feedback_needs_a_decision_log() -> None:
    with pytest.raises(ConfigError, match=r"log\.path"):
        _router(None).feedback("req-1", 1.0)
