"""`Router.feedback`: a score for a routed call's answer, kept in the decision log and in the report."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from gearshift import (
    ConfigError,
    DecisionLog,
    InvalidRequestError,
    JSONLDecisionLog,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    default_registry,
    read_records,
)
from gearshift.providers import OpenAIProvider
from gearshift.reporting import build_report
from gearshift.routing import _decision_log
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import LocalOpenAIServer

OPENAI_KEY = "sk-local-openai-7f3a9c"  # the key the openai_server fixture requires


def _router(tmp_path: Path | None, log: DecisionLog | None = None) -> Router:
    registry = default_registry()
    providers = {p: OpenAIProvider(p, require_key=False) for p in {m.provider for m in registry}}
    if tmp_path is not None:
        log = open_decision_log(tmp_path / "log.jsonl")
    return Router(registry, policy=SignalScorer(), providers=providers, decision_log=log)


def _answering_router(server: LocalOpenAIServer, small: ModelSpec, log: Path, **options: float) -> Router:
    provider = OpenAIProvider(api_key=OPENAI_KEY, base_url=server.base_url, timeout=5.0)
    log_ = open_decision_log(log, **options)
    return Router(ModelRegistry([small]), policy=SignalScorer(), providers=[provider], decision_log=log_)


def _feedback(log: Path) -> list[tuple[str, float]]:
    return [(r["request_id"], r["score"]) for r in read_records(log) if r["kind"] == "feedback"]


def test_feedback_is_a_record_the_report_averages(
    openai_server: LocalOpenAIServer, small: ModelSpec, tmp_path: Path
) -> None:
    router = _answering_router(openai_server, small, tmp_path / "log.jsonl")
    ids = [router.complete(f"Question {i}").request_id for i in range(3)]
    router.feedback(ids[0], 1.0)
    router.feedback(ids[1], True, source="ci", comment="tests pass")
    router.feedback(ids[2], 0.25, source="grader")
    router.close()
    records = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "feedback"]
    assert [(r["request_id"], r["score"], r["source"]) for r in records] == [
        (ids[0], 1.0, "user"),
        (ids[1], 1.0, "ci"),
        (ids[2], 0.25, "grader"),
    ]
    assert records[1]["comment"] == "tests pass" and records[0]["schema"] == 1
    assert build_report(list(read_records(tmp_path / "log.jsonl")))["feedback"] == {
        "count": 3,
        "mean_score": pytest.approx(0.75),
    }


@pytest.mark.parametrize("name", ["log.jsonl", "log.db"])
def test_an_answer_from_before_a_restart_is_scored_and_a_made_up_id_refused(
    openai_server: LocalOpenAIServer, small: ModelSpec, tmp_path: Path, name: str
) -> None:
    # A score for a mistyped or made-up id was written, and landed on no call: the report counted it.
    log = tmp_path / name
    with _answering_router(openai_server, small, log) as router:
        earlier = router.complete("What is the capital of France?").request_id
    with _answering_router(openai_server, small, log) as router:  # a new process on the same log
        router.feedback(earlier, 0.0)
        with pytest.raises(InvalidRequestError, match=rf"'req-1' is not the id of a call in .*{name}"):
            router.feedback("req-1", 1.0)
        with pytest.raises(InvalidRequestError, match="not the id of a call"):
            router.feedback(earlier[:-1], 1.0)  # one character short
    assert _feedback(log) == [(earlier, 0.0)]


def test_an_id_that_only_feedback_names_is_not_a_call(tmp_path: Path) -> None:
    # Feedback an older version took for a made-up id does not make that id a call.
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps({"schema": 1, "kind": "feedback", "ts": 1.0, "request_id": "req-9"}) + "\n")
    log = open_decision_log(path)
    assert not log.holds_call("req-9")
    log.close()


def test_a_call_deleted_by_retention_is_refused_saying_so(
    openai_server: LocalOpenAIServer, small: ModelSpec, tmp_path: Path
) -> None:
    log = tmp_path / "log.db"
    with _answering_router(openai_server, small, log) as router:
        old = router.complete("What is the capital of France?").request_id
    db = sqlite3.connect(log)
    with db:
        db.execute("UPDATE records SET ts = ts - 40 * 86400")  # the call was 40 days ago
    db.close()
    router = _answering_router(openai_server, small, log, max_age_days=30)
    with router, pytest.raises(InvalidRequestError, match="deletes records older than 30 days"):
        router.feedback(old, 1.0)
    assert _feedback(log) == []


def test_a_jsonl_log_is_searched_over_its_last_lookback_bytes(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    lines = [{"schema": 1, "kind": "decision", "ts": 1.0, "request_id": f"call-{i:03d}"} for i in range(300)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    log = open_decision_log(path)
    assert isinstance(log, JSONLDecisionLog)
    log.lookback_bytes = 100 * len(json.dumps(lines[0]) + "\n")  # the last 100 records
    assert [log.holds_call(f"call-{i:03d}") for i in (0, 199, 200, 299)] == [False, False, True, True]
    with pytest.raises(InvalidRequestError, match=r"its last 0\.\d+ MiB, where a call is looked for"):
        _router(None, log).feedback("call-000", 1.0)
    log.close()


@pytest.mark.parametrize("block", [30, 100])  # a record is about 70 bytes: longer than a block, or cut
def test_a_jsonl_lookup_finds_a_call_whose_line_a_read_block_cuts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    path = tmp_path / "log.jsonl"
    lines = [{"schema": 1, "kind": "attempt", "ts": 1.0, "request_id": f"call-{i:03d}"} for i in range(300)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.setattr(_decision_log, "_READ_BLOCK", block)
    log = open_decision_log(path)
    assert all(log.holds_call(f"call-{i:03d}") for i in range(300))
    log.close()


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


def test_a_log_that_cannot_be_read_keeps_the_score_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A read error is no proof the call is not there: refusing would lose the score.
    log = open_decision_log(tmp_path / "log.db")
    for stored in tmp_path.glob("log.db*"):  # the database, its WAL and index: a folder in their place
        stored.unlink()
    (tmp_path / "log.db").mkdir()
    with caplog.at_level("WARNING", logger="gearshift"):
        assert log.holds_call("req-1")
    assert "could not look call req-1 up, taken as held" in caplog.text
    log.close()
