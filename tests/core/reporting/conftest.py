"""Decision-log records of every kind over two weeks, for the report's tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

WEEK1 = dt.datetime(2026, 11, 16, 12, tzinfo=dt.timezone.utc).timestamp()  # a Monday
WEEK2 = WEEK1 + 7 * 86400
REFERENCE = {"model": "big", "tier": 2, "input_per_mtok": 10.0, "output_per_mtok": 20.0}


def _call(
    rid: str,
    ts: float,
    *,
    agent: str = "a",
    difficulty: float = 0.1,
    escalation: float = 0.0,
    policy: str = "scorer",
    model: str = "small",
    tier: int = 1,
    cost: float = 0.001,
) -> list[dict[str, Any]]:
    decision = {
        "schema": 1,
        "kind": "decision",
        "ts": ts,
        "request_id": rid,
        "agent_id": agent,
        "model": model,
        "tier": tier,
        "scores": {"difficulty": difficulty, "escalation": escalation},
        "policy": policy,
        "reference": REFERENCE,
    }
    attempt = {
        "schema": 1,
        "kind": "attempt",
        "ts": ts + 1,
        "request_id": rid,
        "agent_id": agent,
        "model": model,
        "provider": "p",
        "ok": True,
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": cost,
        "latency_ms": 10.0,
    }
    return [decision, attempt]


def _make_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for i in range(4):  # week 1: easy, nothing escalated
        records += _call(f"w1-{i}", WEEK1 + i, difficulty=0.15)
    # week 2: hard; one step moved up by step signals, one by the learned escalation
    records += _call("w2-0", WEEK2, difficulty=0.95, escalation=1.0, model="big", tier=2, cost=0.012)
    records += _call(
        "w2-1", WEEK2 + 1, difficulty=0.95, policy="learned-escalation", model="big", tier=2, cost=0.012
    )
    records += _call("w2-2", WEEK2 + 2, difficulty=0.95, agent="b")
    records.append(
        {
            "schema": 1,
            "kind": "escalation",
            "ts": WEEK2 + 3,
            "request_id": "w2-2",
            "agent_id": "b",
            "from": "small",
            "to": "big",
            "reason": "r",
            "source": "gate:judge",
        }
    )
    records += _call("w2-3", WEEK2 + 4, difficulty=0.95, agent="b")
    records.append(
        {
            "schema": 1,
            "kind": "escalation",
            "ts": WEEK2 + 5,
            "request_id": "w2-3",
            "agent_id": "b",
            "from": "small",
            "to": "big",
            "reason": "r",
            "source": "self",
        }
    )
    records.append(
        {
            "schema": 1,
            "kind": "budget_refusal",
            "ts": WEEK2 + 6,
            "request_id": "w2-4",
            "agent_id": "a",
            "keys": ["agent:a"],
            "error": "over",
        }
    )
    records.append(
        {
            "schema": 1,
            "kind": "budget_overrun",
            "ts": WEEK2 + 7,
            "request_id": "w2-0",
            "agent_id": "a",
            "excess_usd": 0.002,
        }
    )
    records.append(
        {
            "schema": 1,
            "kind": "feedback",
            "ts": WEEK2 + 8,
            "request_id": "w2-2",
            "score": 0.25,
            "source": "user",
            "comment": None,
        }
    )
    for record in _call("s-w2-2", WEEK2 + 9, agent="shadow", model="big", tier=2, cost=0.012):
        records.append({**record, "run_id": "shadow:w2-2"})
    for rid, (routed, reference) in (("w2-2", (0.0, 1.0)), ("w2-3", (1.0, 1.0))):
        records.append({"schema": 1, "kind": "shadow", "ts": WEEK2 + 9, "request_id": rid, "agent_id": "b",
                        "task": "live", "prompt": None, "judge": "heuristic", "shadow_request_id": f"s-{rid}",
                        "outcomes": {"small": {"score": routed}, "big": {"score": reference}}})  # fmt: skip
    return records


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """Eight requests over two ISO weeks (2026-W47 easy, 2026-W48 hard and escalated), a refusal,
    an overrun, a feedback and two shadow pairs."""
    return _make_records()


def write_log(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def sample_log(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    """`records` as a JSONL decision log."""
    return write_log(tmp_path / "log.jsonl", records)
