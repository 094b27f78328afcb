"""Every Python block of the README runs and does what the README says it does.

The blocks run unchanged, against local stand-ins for the OpenAI and Anthropic APIs: they use the
built-in model ladder and real SDK clients, and the official SDKs read OPENAI_BASE_URL and
ANTHROPIC_BASE_URL, which point them at servers on 127.0.0.1 here. Each block is then checked for
what it demonstrates (the tier a plain question goes to, a hard budget refusing, a feedback record...)
from its output, the requests the local server saw and the files it wrote.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gearshift import default_models, read_records
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer, RecordedRequest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
LADDER = default_models()
LOWEST_TIER = {m.id for m in LADDER if m.tier == min(m.tier for m in LADDER)}


@dataclass(frozen=True)
class BlockRun:
    """What one README block did: its output, the chat requests it sent, the folder it ran in."""

    stdout: str
    stderr: str
    chats: list[RecordedRequest]
    folder: Path

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def _routes_a_plain_question_to_the_lowest_tier(run: BlockRun) -> None:
    reasons = ast.literal_eval(run.lines[0])  # print(router.decide(...).reasons)
    assert any("-> tier 1 of 1, 2, 3" in reason for reason in reasons), reasons
    model_id, text = run.lines[1].split(
        " ", 1
    )  # print(answer.model_id, answer.response.text, answer.cost_usd)
    assert model_id in LOWEST_TIER and reasons[-1].endswith(f": {model_id}")
    assert text.startswith(f"Simulated answer from model '{model_id}'") and "capital of France" in text
    assert float(text.rsplit(" ", 1)[1]) > 0
    assert [c.model for c in run.chats] == [model_id]


def _the_agent_calls_its_tool_and_answers_from_the_result(run: BlockRun) -> None:
    # The simulated model calls word_count first, then answers from what the tool returned.
    assert 'from the tool results: word_count returned "' in run.stdout
    assert len(run.chats) == 2 and {c.model for c in run.chats} <= LOWEST_TIER
    assert [m["role"] for m in run.chats[1].body["messages"]][-2:] == ["assistant", "tool"]


def _a_hard_budget_refuses_once_spent(run: BlockRun) -> None:
    # print(refused): the limit, what was spent, and the need; only some of the 20 calls were made.
    assert "budget 'run:* lifetime hard' on key 'run:run-1' refuses this call: limit $0.0002" in run.stdout
    spent = float(run.stdout.split("spent $", 1)[1].split(",", 1)[0])
    assert spent > 0 and 0 < len(run.chats) < 20


def _a_batch_answers_both_from_the_cheap_stage(run: BlockRun) -> None:
    rows = sorted(line.split() for line in run.lines)  # in the order they finished
    assert [row[:3] for row in rows] == [["0", "cheap", "True"], ["1", "cheap", "True"]]
    assert {row[3] for row in rows} <= LOWEST_TIER and len(run.chats) == 2


def _a_call_logs_one_line_and_one_span_per_attempt(run: BlockRun) -> None:
    routed = [line for line in run.stderr.splitlines() if line.startswith("INFO:gearshift:routed ")]
    assert len(routed) == 1 and " (tier 1) " in routed[0]
    spans: list[dict[str, Any]] = []
    decoder, text = json.JSONDecoder(), run.stdout.strip()
    while text:
        span, end = decoder.raw_decode(text)
        spans.append(span)
        text = text[end:].strip()
    call = next(s for s in spans if s["parent_id"] is None)
    attempts = [s for s in spans if s["parent_id"] == call["context"]["span_id"]]
    assert len(spans) == 2 and len(attempts) == 1
    model = attempts[0]["attributes"]["gearshift.model_id"]
    assert call["name"] == attempts[0]["name"] == f"chat {model}" and model in LOWEST_TIER


def _feedback_joins_the_call_in_the_log(run: BlockRun) -> None:
    assert run.stdout == ""  # the block prints nothing: what it does is in the decision log
    records = list(read_records(run.folder / "decisions.jsonl"))
    decision = next(r for r in records if r["kind"] == "decision")
    feedback = [r for r in records if r["kind"] == "feedback"]
    assert len(feedback) == 1
    assert feedback[0]["request_id"] == decision["request_id"]
    assert (feedback[0]["score"], feedback[0]["source"]) == (1.0, "user")


# Each block is told by a line of its code; a block without a check fails `test_every_block_is_checked`.
CHECKS: dict[str, Callable[[BlockRun], None]] = {
    'print(router.decide("What is the capital of France?").reasons)': (
        _routes_a_plain_question_to_the_lowest_tier
    ),
    "agent = create_agent(": _the_agent_calls_its_tool_and_answers_from_the_result,
    "agent = FunctionAgent(": _the_agent_calls_its_tool_and_answers_from_the_result,
    "except BudgetExceeded as refused:": _a_hard_budget_refuses_once_spent,
    "await router.abatch(": _a_batch_answers_both_from_the_cheap_stage,
    "trace.set_tracer_provider(provider)": _a_call_logs_one_line_and_one_span_per_attempt,
    "router.feedback(answer.request_id, 1.0": _feedback_joins_the_call_in_the_log,
}


def _check_for(block: str) -> Callable[[BlockRun], None]:
    found = [check for line, check in CHECKS.items() if line in block]
    assert len(found) == 1, f"no single check for the README block starting {block.splitlines()[0]!r}"
    return found[0]


def test_every_block_is_checked() -> None:
    assert BLOCKS
    for block in BLOCKS:
        _check_for(block)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_readme_python_block_does_what_it_shows(block: str, tmp_path: Path) -> None:
    check = _check_for(block)
    openai_models = [m.model for m in LADDER if m.provider == "openai"]
    anthropic_models = [m.model for m in LADDER if m.provider == "anthropic"]
    with (
        LocalOpenAIServer(models=openai_models, api_key="sk-readme") as openai_server,
        LocalAnthropicServer(models=anthropic_models, api_key="sk-ant-readme") as anthropic_server,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if k != "GEARSHIFT_CONFIG"},
            "OPENAI_API_KEY": "sk-readme",
            "OPENAI_BASE_URL": openai_server.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-readme",
            "ANTHROPIC_BASE_URL": anthropic_server.url,
        }
        result = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        chats = [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
        chats += [r for r in anthropic_server.requests if r.path.endswith("/messages")]
    assert result.returncode == 0, result.stderr
    check(BlockRun(result.stdout, result.stderr, chats, tmp_path))
