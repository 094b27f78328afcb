"""`gearshift report` over a large decision log: 1,000,000 records by default, generated here (never
committed) in a temporary folder, with the record shapes the router writes (decisions and attempts,
some fallbacks, escalations and feedback, over four weeks and 20 agents).

    uv run python tests/benchmarks/report_scale.py [--records 1000000] [--format jsonl|sqlite] [--json]

Times `gearshift report --log LOG --json` in-process (reading, joining and the JSON), and the same
with `--html`. Prints a JSON object last: {"records", "format", "report_s", "report_cpu_s", "report_html_s",
"generate_s", "requests"}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gearshift.cli import main as gearshift
from gearshift.routing._decision_log import open_decision_log

START = 1_790_000_000.0  # a fixed start, four weeks of traffic from it
REFERENCE = {"model": "large", "tier": 2, "input_per_mtok": 2.5, "output_per_mtok": 10.0}


def _records(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    step = 28 * 86400 / (count / 2.1)
    made = 0
    i = 0
    while made < count:
        rid = f"{i:032x}"
        ts = START + i * step
        agent = f"agent-{rng.randrange(20)}"
        difficulty = rng.random()
        tier = 2 if difficulty > 0.7 else 1
        model = "large" if tier == 2 else "small"
        yield {
            "schema": 1,
            "kind": "decision",
            "ts": ts,
            "request_id": rid,
            "agent_id": agent,
            "run_id": None,
            "step_type": "other",
            "step_index": None,
            "model": model,
            "tier": tier,
            "fallbacks": ["large"],
            "reasons": [
                "difficulty 0.42 in band 1 of 1, 2 (cut points 0.50)",
                "the cheapest model of tier 1",
            ],
            "scores": {"difficulty": difficulty, "escalation": 1.0 if rng.random() < 0.03 else 0.0},
            "estimated_cost_usd": 0.0004,
            "policy": "scorer",
            "budget_changed": False,
            "messages": 1,
            "tools": 0,
            "reference": REFERENCE,
        }
        made += 1
        if rng.random() < 0.02:  # a failed attempt, then a fallback
            yield _attempt(rid, ts, agent, model, ok=False)
            made += 1
            model = "large"
        yield _attempt(
            rid, ts, agent, model, ok=True, tokens=(rng.randrange(50, 2000), rng.randrange(10, 500))
        )
        made += 1
        if rng.random() < 0.01:
            yield {
                "schema": 1,
                "kind": "escalation",
                "ts": ts,
                "request_id": rid,
                "agent_id": agent,
                "run_id": None,
                "from": "small",
                "to": "large",
                "reason": "r",
                "source": "gate:judge",
            }
            made += 1
        if rng.random() < 0.05:
            yield {
                "schema": 1,
                "kind": "feedback",
                "ts": ts + 60,
                "request_id": rid,
                "score": rng.random(),
                "source": "user",
                "comment": None,
            }
            made += 1
        i += 1


def _attempt(
    rid: str, ts: float, agent: str, model: str, *, ok: bool, tokens: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": "attempt",
        "ts": ts + 0.5,
        "request_id": rid,
        "agent_id": agent,
        "run_id": None,
        "model": model,
        "provider": "openai",
        "ok": ok,
        "streamed": False,
        "cancelled": False,
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "usage_estimated": False,
        "cost_usd": (tokens[0] * 0.15 + tokens[1] * 0.6) / 1e6,
        "latency_ms": 420.0,
        "error_kind": None if ok else "server",
        "status_code": None if ok else 500,
        "error": None if ok else "x",
    }


def _timed_report(argv: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Wall-clock and CPU seconds of one `gearshift report` run, and its JSON."""
    out = io.StringIO()
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(out):
        assert gearshift(argv) == 0
    return time.perf_counter() - started, time.process_time() - cpu, json.loads(out.getvalue())


def measure(count: int, fmt: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("log.jsonl" if fmt == "jsonl" else "log.db")
        started = time.perf_counter()
        log = open_decision_log(path)
        for record in _records(count):
            log.write(record)
        log.close()
        generate_s = time.perf_counter() - started
        report_s, report_cpu_s, report = _timed_report(["report", "--log", str(path), "--json"])
        html_s, _, _ = _timed_report(
            ["report", "--log", str(path), "--json", "--html", str(Path(folder) / "r.html")]
        )
    return {
        "records": report["log"]["records"],
        "format": fmt,
        "report_s": round(report_s, 2),
        "report_cpu_s": round(report_cpu_s, 2),
        "report_html_s": round(html_s, 2),
        "generate_s": round(generate_s, 2),
        "requests": report["requests"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["jsonl", "sqlite"], default="jsonl")
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = measure(args.records, args.format)
    if not args.json:
        print(f"{figures['records']:,} records ({figures['format']}), {figures['requests']:,} requests")
        print(
            f"gearshift report --json:         {figures['report_s']} s (target < 30 s), "
            f"{figures['report_cpu_s']} s CPU"
        )
        print(f"gearshift report --json --html:  {figures['report_html_s']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
