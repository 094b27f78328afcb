"""The report's figures over hand-made records of every kind, and the command's input handling."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gearshift.cli import main
from gearshift.reporting import build_report, render_html
from gearshift.reporting._cli import parse_since


def test_escalations_by_cause_budgets_feedback_and_savings(records: list[dict[str, Any]]) -> None:
    report = build_report(records)
    assert report["requests"] == 8
    causes = report["escalation"]["by_cause"]
    assert {c: v["requests"] for c, v in causes.items()} == {
        "gate": 1,
        "self": 1,
        "step_signals": 1,
        "learned": 1,
    }
    assert report["escalation"]["rate"] == pytest.approx(4 / 8)
    assert report["budget"] == {"refusals": 1, "overruns": 1, "overrun_excess_usd": pytest.approx(0.002)}
    assert report["feedback"] == {"count": 1, "mean_score": 0.25}
    assert report["shadow"] == {
        "pairs": 2,
        "cost_usd": pytest.approx(0.012),  # the shadow's own call: spend, not traffic
        "upward_pairs": 2,  # records without a direction are upward ones
        "quality": 0.5,
        "reference_quality": 1.0,
        "quality_kept": 0.5,
        "downward_pairs": 0,
        "over_routed": None,
    }
    strongest = 8 * (1000 * 10.0 + 100 * 20.0) / 1e6
    spent = 6 * 0.001 + 2 * 0.012
    assert report["cost"]["always_strongest_usd"] == pytest.approx(strongest)
    assert report["cost"]["savings_usd"] == pytest.approx(strongest - spent)
    assert report["tiers"]["2"]["cost_per_request_usd"] == pytest.approx(0.012)
    assert report["agents"]["b"]["escalation_rate"] == 1.0


def _downward(rid: str, routed: float, cheap: float) -> dict[str, Any]:
    """A downward shadow record of the tier-2 call `rid` (answered by `big`, shadowed by `small`)."""
    return {"schema": 1, "kind": "shadow", "ts": 1.8e9, "request_id": rid, "agent_id": "a", "task": "live",
            "prompt": None, "judge": "heuristic", "direction": "down", "shadow_request_id": f"s-{rid}",
            "outcomes": {"big": {"score": routed}, "small": {"score": cheap}}}  # fmt: skip


def test_downward_pairs_count_as_over_routed_and_leave_the_upward_quality_alone(
    records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # w2-0 and w2-1 went to tier 2: the cheap model did as well on the first, worse on the second.
    records += [_downward("w2-0", 0.8, 0.9), _downward("w2-1", 1.0, 0.0)]
    shadow = build_report(records)["shadow"]
    assert (shadow["pairs"], shadow["upward_pairs"], shadow["downward_pairs"]) == (4, 2, 2)
    assert shadow["over_routed"] == 0.5
    assert (shadow["quality"], shadow["reference_quality"], shadow["quality_kept"]) == (0.5, 1.0, 0.5)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["report", "--log", str(log)]) == 0
    text = capsys.readouterr().out
    assert "shadow:       4 pairs, $0.0120 spent on shadows; 2 upward: judged quality 0.500" in text
    assert "; 2 downward: the cheapest model did as well on 50.0% (over-routed)" in text


def test_week_over_week_drift_of_escalations_and_predicted_difficulty(records: list[dict[str, Any]]) -> None:
    report = build_report(records)
    assert [w["week"] for w in report["weeks"]] == ["2026-W47", "2026-W48"]
    drift = report["drift"]
    assert drift["escalation_rate_change"] == pytest.approx(1.0)
    assert drift["difficulty_mean_change"] == pytest.approx(0.8)
    assert drift["difficulty_distance"] == pytest.approx(1.0)  # the two histograms do not overlap
    assert build_report(records[:8])["drift"] is None  # one week: no drift to tell


def test_since_and_agent_narrow_the_report(sample_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = sample_log
    assert main(["report", "--log", str(log), "--since", "2026-11-23", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 4
    assert main(["report", "--log", str(log), "--agent", "b", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["requests"] == 2 and report["feedback"]["count"] == 1
    assert main(["report", "--log", str(log)]) == 0
    text = capsys.readouterr().out
    assert "8 (0 unanswered)" in text and "escalations:  50.0%" in text


def test_an_agents_report_counts_only_the_shadows_of_its_own_calls(records: list[dict[str, Any]]) -> None:
    # The one shadow call ($0.012) shadowed w2-2, a call of agent b: agent a's report spent nothing
    # on shadows (it printed the whole log's shadow spend as its own).
    assert build_report(records, agent="b")["shadow"]["cost_usd"] == pytest.approx(0.012)
    assert build_report(records, agent="a")["shadow"]["cost_usd"] == 0.0


def test_an_agent_with_no_requests_is_told_apart_from_a_quiet_one(
    sample_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A misspelt agent id printed a report of zeros and nothing else, as if that agent had been idle.
    assert main(["report", "--log", str(sample_log), "--agent", "B", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["requests"] == 0  # stdout stays only JSON
    assert "no requests from agent 'B' in" in captured.err and "agents with requests: a, b" in captured.err
    assert main(["report", "--log", str(sample_log), "--agent", "b"]) == 0
    assert capsys.readouterr().err == ""


def test_the_span_runs_from_the_earliest_record_to_the_latest(records: list[dict[str, Any]]) -> None:
    # Two routers appending to one log write their batches out of time order: the span took the
    # first and last lines' times, so the page said the log began with its second router's batch.
    week1, week2 = records[:8], records[8:]
    log = build_report([*week1[2:], *week2, *week1[:2]])["log"]
    times = [r["ts"] for r in records]
    assert (log["first_ts"], log["last_ts"]) == (min(times), max(times))


def test_since_takes_dates_times_and_ages() -> None:
    assert parse_since("2026-11-23") == dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc).timestamp()
    assert (
        parse_since("2026-11-23T08:30+01:00")
        == dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.timezone.utc).timestamp()
    )
    assert parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    # UTC written with a Z, as ISO 8601 and JavaScript's toISOString write it, on every Python (3.10's
    # fromisoformat refused it, 3.11 took it).
    utc = dt.datetime(2026, 11, 30, 8, tzinfo=dt.timezone.utc).timestamp()
    assert parse_since("2026-11-30T08:00Z") == parse_since("2026-11-30T08:00:00.000z") == utc


def test_bad_input_says_what_and_where(
    tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "short.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records[:2]), encoding="utf-8")
    assert main(["report", "--log", str(log), "--since", "last tuesday"]) == 2
    assert "--since" in capsys.readouterr().err
    # An empty value (`--since "$SINCE"`, the variable unset) reported the whole log.
    assert main(["report", "--log", str(log), "--since", ""]) == 2
    assert "cannot read '' as a date" in capsys.readouterr().err
    with log.open("a", encoding="utf-8") as file:
        file.write("{not json\n")
    assert main(["report", "--log", str(log), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "short.jsonl" in captured.err and "line 3" in captured.err
    assert main(["report", "--log", str(tmp_path / "missing.jsonl")]) == 2
    assert "no decision log" in capsys.readouterr().err
    not_sqlite = tmp_path / "x.db"
    not_sqlite.write_text("hello", encoding="utf-8")
    assert main(["report", "--log", str(not_sqlite)]) == 2
    assert "x.db" in capsys.readouterr().err


def test_a_log_being_written_is_read_up_to_its_last_whole_line(
    sample_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sample_log.open("a", encoding="utf-8") as file:
        file.write('{"schema": 1, "kind": "decision", "ts": 1.0, "requ')  # a router mid-write
    assert main(["report", "--log", str(sample_log), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 8


def test_the_text_report_keeps_the_digits_of_a_cheap_models_cost(
    records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The HTML page showed $0.000014 for these calls, but the printed report cut every cost to four
    # decimals: the model line, the total and the always-strongest figure all read "$0.0000".
    cheap = [{**r, "cost_usd": 0.0000137} if r["kind"] == "attempt" else r for r in records]
    log = tmp_path / "cheap.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in cheap), encoding="utf-8")
    assert main(["report", "--log", str(log)]) == 0
    text = capsys.readouterr().out
    assert "$0.0000;" not in text and "$0.0000 " not in text
    assert re.search(r"^cost: +\$0\.00011;", text, re.MULTILINE)
    assert re.search(r"^  small +tier 1 +75\.0% +\$0\.000082 ", text, re.MULTILINE)


def test_drift_says_how_much_of_each_week_the_log_covers(
    records: list[dict[str, Any]], sample_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The log ends on the Monday of 2026-W48: drift compared that one day against a whole week and
    # printed it as "2026-W47 -> 2026-W48", as if both were weeks alike.
    report = build_report(records)
    assert [(w["week"], w["days"], w["requests"]) for w in report["weeks"]] == [
        ("2026-W47", 7, 4),
        ("2026-W48", 1, 4),
    ]
    drift = report["drift"]
    assert (drift["from_days"], drift["to_days"], drift["from_requests"], drift["to_requests"]) == (
        7,
        1,
        4,
        4,
    )
    assert main(["report", "--log", str(sample_log)]) == 0
    assert (
        "drift:        2026-W47 (4 requests) -> 2026-W48 (4 requests, partial: 1 of 7 days): escalation rate "
        "+100.0 points" in capsys.readouterr().out
    )
    assert (
        "2026-W47 (4 requests) -&gt; 2026-W48 (4 requests, partial: 1 of 7 days): escalation"
        in render_html(report)
    )
    # A log from a Wednesday (`--since`) to the next Sunday: the first week is the partial one.
    wednesday = [{**r, "ts": r["ts"] + 2 * 86400} for r in records[:8]]
    sunday = [{**r, "ts": r["ts"] + 6 * 86400} for r in records[8:10]]
    drift = build_report([*wednesday, *sunday])["drift"]
    assert (drift["from_days"], drift["to_days"], drift["to_requests"]) == (5, 7, 1)


def test_a_count_of_one_is_singular_in_the_printed_report_and_on_the_page(
    records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A log of one decision printed "(1 records)" and the page "1 records from ...", "1 requests".
    log = tmp_path / "one.jsonl"
    log.write_text(json.dumps(records[0]) + "\n", encoding="utf-8")
    assert main(["report", "--log", str(log)]) == 0
    assert "one.jsonl (1 record)\n" in capsys.readouterr().out
    page = render_html(build_report(records[:1]))
    assert "1 record from " in page and '<p class="big">\n1 request · ' in page
    # One shadow pair, one feedback score, one overrun, one attempt.
    one_each = [
        *records[10:12],  # w2-1, answered by big
        {**records[-1], "request_id": "w2-1"},
        {**records[-5], "request_id": "w2-1"},
        {**records[-6], "request_id": "w2-1"},
    ]
    assert [r["kind"] for r in one_each] == ["decision", "attempt", "shadow", "feedback", "budget_overrun"]
    log.write_text("".join(json.dumps(r) + "\n" for r in one_each), encoding="utf-8")
    assert main(["report", "--log", str(log)]) == 0
    text = capsys.readouterr().out
    assert "0 refused, 1 overrun\n" in text and "shadow:       1 pair, " in text and " 1 attempt " in text
    page = render_html(build_report(one_each))
    assert "1 shadow pair, " in page and "1 feedback score, " in page


def test_the_models_and_tiers_tables_say_what_their_costs_sum(
    records: list[dict[str, Any]], sample_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An escalated call's cheap attempt is the cheap model's spend in the Models table but the answering
    # tier's in the Tiers table: the two tables' costs differ row by row, and neither said so.
    assert main(["report", "--log", str(sample_log)]) == 0
    text = capsys.readouterr().out
    assert "models:       cost is each model's own attempts, failed and escalated-from" in text
    assert "tiers:        cost is whole requests under the tier that answered, an escalation's" in text
    assert re.search(r"^  tier 2 +25\.0% +\$0\.0240 +\$0\.0120 a request$", text, re.MULTILINE)
    page = render_html(build_report(records))
    assert "<h2>Models</h2>\n<p>Cost is each model&#x27;s own attempts" in page
    assert "<h2>Tiers</h2>\n<p>Cost is whole requests under the tier that answered" in page
