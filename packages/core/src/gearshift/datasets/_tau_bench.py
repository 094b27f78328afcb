"""The bundled tau-bench retail runs of gpt-4o-mini and gpt-4o, as an agent outcome table.

The files in `tau_bench_retail/` are asteroidai/tau-bench's result logs, gzip-compressed but otherwise
unchanged (see `tau_bench_retail/PROVENANCE.md`). Each is a JSON list of 115 records: `task_id`,
`reward` (1.0 success, 0.0 failure) and `traj`, the whole conversation in the OpenAI chat format.

Converted here, in code:
- the opening prompt is the system policy and the first user turn of the cheap model's run (the task
  router routes on it); each model ran with its own simulated user (gpt-4o-mini's user was gpt-4o-mini,
  gpt-4o's was gpt-4o), so the strong run's own first user turn differs: it is counted in its costs,
  and its run's messages start after it;
- score = reward; messages = the rest of the conversation; a tool result is an error when its text
  reads as one (the logs start those with "Error");
- the logs record no tokens: every assistant turn's usage is estimated with gearshift's estimator on
  what was sent before it (system prompt, the model's own conversation so far; tool definitions are
  not recorded and not counted) and on its own text, and priced at the genai-prices list prices
  pinned below (the test suite checks they still agree).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from importlib import resources
from typing import Any

from .._messages import Message, ToolCall
from .._models import ModelPrices, ModelSpec
from ..signals._signals import is_error_result
from ._agent_runs import AgentRun, RunMessage
from ._agent_tables import AgentRuns, agent_runs, estimate_step_usage
from ._outcomes import Outcome, OutcomeRow, OutcomeTable

__all__ = [
    "TAU_RETAIL_PRICES",
    "TAU_RETAIL_STRONG_MODEL",
    "TAU_RETAIL_WEAK_MODEL",
    "load_tau_retail",
    "tau_retail_models",
]

TAU_RETAIL_WEAK_MODEL = "gpt-4o-mini"
"""The cheap model of the bundled tau-bench retail runs."""

TAU_RETAIL_STRONG_MODEL = "gpt-4o"
"""The strong model of the bundled tau-bench retail runs."""

TAU_RETAIL_PRICES: dict[str, ModelPrices] = {
    TAU_RETAIL_WEAK_MODEL: ModelPrices(input=0.15, output=0.6),
    TAU_RETAIL_STRONG_MODEL: ModelPrices(input=2.5, output=10.0),
}
"""OpenAI list prices (dollars per million tokens) as genai-prices gives them; the runs' prices."""

_FILES = {
    TAU_RETAIL_WEAK_MODEL: "tool-calling-gpt-4o-mini-0.0_range_0--1_user-gpt-4o-mini-llm_1102182420.json.gz",
    TAU_RETAIL_STRONG_MODEL: "tool-calling-gpt-4o-0.0_range_0--1_user-gpt-4o-llm_1102193240.json.gz",
}
_TASK = "tau-retail"


def tau_retail_models(provider: str = "replay") -> tuple[ModelSpec, ModelSpec]:
    """The cheap (tier 1) and strong (tier 2) model of the bundled runs, priced as the runs are."""
    return tuple(  # type: ignore[return-value]
        ModelSpec(id=model, provider=provider, model=model, tier=tier, prices=TAU_RETAIL_PRICES[model])
        for tier, model in enumerate((TAU_RETAIL_WEAK_MODEL, TAU_RETAIL_STRONG_MODEL), start=1)
    )


def _records(model: str) -> dict[int, dict[str, Any]]:
    data = resources.files(__package__).joinpath("tau_bench_retail").joinpath(_FILES[model]).read_bytes()
    return {record["task_id"]: record for record in json.loads(gzip.decompress(data))}


def _message(raw: dict[str, Any]) -> Message:
    role, content = raw["role"], raw.get("content") or ""
    if role == "assistant":
        calls = tuple(
            ToolCall(call["id"], call["function"]["name"], call["function"]["arguments"])
            for call in raw.get("tool_calls") or ()
        )
        return Message.assistant(content, calls)
    if role == "tool":
        message = Message.tool(raw["tool_call_id"], content, name=raw.get("name"))
        return Message.tool(
            raw["tool_call_id"], content, name=raw.get("name"), is_error=is_error_result(message)
        )
    return Message(role, content)


def _run(traj: list[dict[str, Any]], prices: ModelPrices) -> tuple[AgentRun, float]:
    """The run after the system prompt and first user turn, each step's usage estimated on the whole log."""
    messages = [_message(raw) for raw in traj]
    opening, rest = messages[:2], messages[2:]
    bare = AgentRun(tuple(RunMessage(m) for m in rest))
    usages = iter(estimate_step_usage(opening, bare))
    items = []
    for message in rest:
        if message.role == "assistant":
            usage = next(usages)
            items.append(RunMessage(message, usage, prices.cost(usage)))
        else:
            items.append(RunMessage(message))
    run = AgentRun(tuple(items))
    return run, sum(item.cost_usd or 0.0 for item in items)


def load_tau_retail() -> AgentRuns:
    """The 115 tau-bench retail tasks with the runs of gpt-4o-mini (cheap) and gpt-4o (strong).

    Costs are estimated from the text (the logs record no tokens) and priced at `TAU_RETAIL_PRICES`;
    `AgentRuns.notes` says so.
    """
    logs = {model: _records(model) for model in _FILES}
    rows = []
    for task_id in sorted(logs[TAU_RETAIL_WEAK_MODEL]):
        weak_traj = logs[TAU_RETAIL_WEAK_MODEL][task_id]["traj"]
        prompt = tuple(_message(raw) for raw in weak_traj[:2])
        outcomes = {}
        for model, records in logs.items():
            record = records[task_id]
            run, cost = _run(record["traj"], TAU_RETAIL_PRICES[model])
            outcomes[model] = Outcome(float(record["reward"]), cost_usd=cost, run=run)
        rows.append(OutcomeRow(f"{_TASK}-{task_id}", _TASK, prompt, outcomes))
    listed = ", ".join(f"{m} ${p.input:g}/${p.output:g} per M" for m, p in TAU_RETAIL_PRICES.items())
    note = (
        "tau-bench retail: tokens estimated from the logged text with gearshift's estimator and priced at "
        f"list prices ({listed}) "
        f"for all {2 * len(rows)} runs, as the logs record none; each model ran with its own simulated user"
    )
    runs = agent_runs(
        OutcomeTable(rows), weak=TAU_RETAIL_WEAK_MODEL, strong=TAU_RETAIL_STRONG_MODEL, notes=(note,)
    )
    return replace(runs, source="bundled tau-bench retail runs")
