"""`gearshift report` on logs it must not misread: bad bytes, a newer schema, a time that is not a number,
and SQLite logs whose names hold URI characters. Each is one line naming the file and the line or row
(exit 2, nothing on stdout), or a clean read that leaves no file behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gearshift.cli import main
from gearshift.routing._decision_log import open_decision_log


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["report", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    return captured.err


def test_a_line_that_is_not_utf8_is_named(
    sample_log: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    with sample_log.open("ab") as file:  # Latin-1, not UTF-8
        file.write(b'{"schema": 1, "kind": "feedback", "comment": "caf\xe9"}\n')
    error = _fails(capsys, "--log", str(sample_log))
    assert f"log.jsonl: line {len(records) + 1} is not UTF-8 text" in error


def test_a_last_line_cut_inside_a_character_is_left_for_the_next_run(
    sample_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = sample_log
    with log.open("ab") as file:  # a router writing "é" (two bytes) has written the first
        file.write(b'{"schema": 1, "kind": "feedback", "comment": "caf' + "é".encode()[:1])
    assert main(["report", "--log", str(log), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 8


@pytest.mark.parametrize("suffix", [".jsonl", ".db"])
def test_a_record_of_a_newer_schema_is_refused_not_misread(
    tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    log_path = tmp_path / f"log{suffix}"
    log = open_decision_log(log_path)
    for record in [*records[:2], {**records[2], "schema": 2}]:
        log.write(record)
    log.close()
    where = "line 3" if suffix == ".jsonl" else "row id 3"
    assert f"{where} has decision-log schema 2, newer than this gearshift reads (schema 1)" in _fails(
        capsys, "--log", str(log_path)
    )


def test_a_time_that_is_not_a_number_is_named(
    sample_log: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    with sample_log.open("a", encoding="utf-8") as file:
        file.write(json.dumps({**records[2], "ts": "2026-11-30"}) + "\n")
    error = _fails(capsys, "--log", str(sample_log), "--since", "2026-11-01")
    line = len(records) + 1
    assert f"log.jsonl: line {line}: ts must be a number (Unix seconds), got '2026-11-30'" in error


def test_a_sqlite_log_is_read_whatever_its_name_and_leaves_no_file_behind(
    tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "run #3?.db"
    log = open_decision_log(log_path)
    for record in records:
        log.write(record)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run #3?.db"]
    assert main(["report", "--log", str(log_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 8
    # No empty "run " database made from the name cut at '#', and no -wal or -shm file left over.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run #3?.db"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"tier": None}, "no field 'tier'"),  # None: the field is left out
        ({"request_id": ["r"]}, "unhashable type: 'list'"),
        ({"scores": {"escalation": "high"}}, "'>' not supported"),
    ],
)
def test_a_record_with_a_field_of_the_wrong_type_is_named_by_its_line(
    sample_log: Path,
    records: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    problem: str,
) -> None:
    decision = {**records[0], "request_id": "extra", **change}
    decision = {key: value for key, value in decision.items() if value is not None}
    with sample_log.open("a", encoding="utf-8") as file:
        file.write(json.dumps(decision) + "\n")
    error = _fails(capsys, "--log", str(sample_log))
    assert f"log.jsonl: line {len(records) + 1} is not a decision-log record gearshift can read" in error
    assert problem in error


@pytest.mark.parametrize("command", ["export-outcomes", "train"])
def test_a_logged_score_out_of_range_is_named_by_its_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    shadow = {
        "schema": 1,
        "kind": "shadow",
        "ts": 1.0,
        "request_id": "call-7",
        "task": "live",
        "prompt": [{"role": "user", "content": "hello"}],
        "outcomes": {"small": {"score": 1.5}, "big": {"score": 1.0}},
    }
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(shadow) + "\n", encoding="utf-8")
    out = tmp_path / "out.json"
    argv = ["--log", str(log)] if command == "export-outcomes" else ["--from-log", str(log)]
    assert main([command, *argv, "--out", str(out), "--min-rows", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert (
        "log.jsonl: the outcome row of request 'call-7' cannot be used: outcomes.small.score" in captured.err
    )
    assert not out.exists()


def test_export_keeps_a_lone_surrogate_as_its_json_escape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gearshift.datasets import load_outcomes

    cut = "caf\u00e9 \ud83d"  # an emoji cut in half: JSON allows its escape, UTF-8 cannot hold it
    shadow = {
        "schema": 1,
        "kind": "shadow",
        "ts": 1.0,
        "request_id": "call-1",
        "task": "live",
        "prompt": [{"role": "user", "content": cut}],
        "outcomes": {"small": {"score": 0.0}, "big": {"score": 1.0}},
    }
    log = open_decision_log(tmp_path / "log.db")  # SQLite keeps records as ASCII-escaped JSON
    log.write(shadow)
    log.close()
    out = tmp_path / "rows.jsonl"
    assert (
        main(["export-outcomes", "--log", str(tmp_path / "log.db"), "--out", str(out), "--min-rows", "1"])
        == 0
    )
    (row,) = load_outcomes(out)
    assert row.prompt == cut


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_nan_in_a_record_is_null_in_the_json_report(
    tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    attempt = next(r for r in records if r["kind"] == "attempt")
    attempt["cost_usd"] = float("nan")  # written by an older gearshift, which let NaN through
    attempt["latency_ms"] = float("inf")
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert "NaN" in log.read_text()
    page = tmp_path / "report.html"
    assert main(["report", "--log", str(log), "--json", "--html", str(page)]) == 0
    report = _strict(capsys.readouterr().out)
    assert report["cost"]["cost_usd"] is None
    assert "$nan" in page.read_text(encoding="utf-8")  # the page says so too, and is written


@pytest.mark.parametrize("command", ["report", "export-outcomes", "train"])
def test_a_log_path_that_is_a_folder_is_named_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    folder = tmp_path / "decisions.jsonl"  # `mkdir` where the file was meant to be
    folder.mkdir()
    argv = {
        "report": ["report", "--log", str(folder)],
        "export-outcomes": ["export-outcomes", "--log", str(folder), "--out", str(tmp_path / "rows.jsonl")],
        "train": ["train", "--from-log", str(folder), "--out", str(tmp_path / "router.json")],
    }[command]
    assert main(argv) == 2
    error = capsys.readouterr().err
    # It said "no decision log at ...", as for a path that does not exist, and train named `--log`.
    flag = "--from-log" if command == "train" else "--log"
    assert f"key '{flag}': {str(folder)!r} is a folder, not a decision log" in error
