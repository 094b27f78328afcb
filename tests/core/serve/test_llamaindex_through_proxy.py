"""An unchanged LlamaIndex app: a `FunctionAgent` over `OpenAILike` pointed at `gearshift serve` runs
its tool loop through the proxy, and each of its model calls is routed and read as a step.

LlamaIndex's OpenAI LLM pins openai<3, which the workspace cannot hold, so the agent runs in a side
venv (`make_llamaindex_venv.sh`, which `.ci/run` calls before the tests), as a subprocess. Under CI a
missing venv fails the test; elsewhere it skips, naming the script to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from proxy_support import ProxyProcess

from gearshift import read_records

ROOT = Path(__file__).resolve().parents[3]
MAKE_VENV = Path(__file__).with_name("make_llamaindex_venv.sh")
SIDE_PYTHON = ROOT / ".venvs" / "llamaindex-openai-like" / "bin" / "python"
AGENT = Path(__file__).with_name("llamaindex_agent.py")


@pytest.fixture
def side_python() -> Path:
    if not SIDE_PYTHON.exists():
        why = f"LlamaIndex's side venv is missing: run bash {MAKE_VENV.relative_to(ROOT)}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return SIDE_PYTHON


def test_a_llamaindex_function_agent_through_the_proxy(
    side_python: Path, proxy: ProxyProcess, proxy_dir: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VIRTUAL_ENV"))}
    run = subprocess.run(
        [str(side_python), str(AGENT), proxy.base_url], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    [call] = result["tool_calls"]
    assert call["name"] == "word_count" and call["output"] == str(len(call["kwargs"]["text"].split()))
    assert "Simulated answer from model" in result["answer"]
    decisions: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10  # the proxy's log is written by a background thread
    while len(decisions) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        decisions = [
            r
            for r in read_records(proxy_dir / "decisions.db")
            if r["kind"] == "decision" and r["run_id"] == "li-run-1"
        ]
    assert [(d["step_type"], d["step_index"]) for d in decisions] == [("act", 0), ("observe", 1)]
    assert {d["agent_id"] for d in decisions} == {"li-agent"}
    attempts = [
        r
        for r in read_records(proxy_dir / "decisions.db")
        if r["kind"] == "attempt" and r["request_id"] in {d["request_id"] for d in decisions}
    ]
    assert len(attempts) == 2 and all(a["ok"] and a["streamed"] and a["cost_usd"] > 0 for a in attempts)
