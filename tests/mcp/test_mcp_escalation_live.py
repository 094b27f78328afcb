"""An agent routing each step with the MCP `route` tool, under the learned escalation of gearshift.toml.

The agent is this test: it asks `route` for each step (its run id, step index and tool history),
calls the chosen model itself through the real `openai` SDK on the local server, and runs the tool.
The scripted small model keeps calling a failing tool with the same arguments; the learned escalation
(a real artifact, `tests/artifacts/make_escalation.py`) hands the run up, and the run stays up. The
`route` tool calls no model, so the spend is the agent's own: each answer's usage at the routed
model's prices, which the tool's estimates follow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_testbed import KEY_ENV, LOCAL_KEY, REGISTRY, structured, write_config
from openai import AsyncOpenAI

from gearshift import Usage
from gearshift.escalation import EscalationModel
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_mcp import build_server

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "escalation.json"
TASK = "Find order 7 and say when it ships."
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "find_order",
            "description": "Where an order stands.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]


def find_order(order_id: str) -> tuple[str, bool]:
    """The order service: down for order 7."""
    if order_id == "7":
        return "Error: the order service timed out", True
    return f"order {order_id}: ships tomorrow", False


async def test_an_agent_on_the_route_tool_is_handed_up_and_stays_up(
    llm_server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, LOCAL_KEY)
    (tmp_path / "escalation.json").write_bytes(ARTIFACT.read_bytes())
    config = write_config(
        tmp_path,
        llm_server,
        extra='\n[routing]\npolicy = "cheapest"\n\n[routing.escalation]\npath = "escalation.json"\n',
    )
    threshold = EscalationModel.load(ARTIFACT).threshold
    # Through `route` the step sees only the prompt and the tool history: two failures are enough here.
    llm_server.script("small", *[Reply(tool_calls=[("find_order", {"order_id": "7"})])] * 2)
    llm_server.script(
        "large", Reply(tool_calls=[("find_order", {"order_id": "07"})]), Reply(text="It ships tomorrow.")
    )
    models = AsyncOpenAI(api_key=LOCAL_KEY, base_url=llm_server.base_url)
    messages: list[Any] = [{"role": "user", "content": TASK}]
    history: list[dict[str, Any]] = []
    routed: list[dict[str, Any]] = []
    spent = estimated = 0.0

    async with Client(build_server(config)) as client:
        for step in range(6):
            decided = structured(
                await client.call_tool(
                    "route",
                    {
                        "prompt": TASK,
                        "agent_id": "shop",
                        "run_id": "order-7",
                        "step_index": step,
                        "tool_history": history,
                    },
                )
            )
            routed.append(decided)
            answer = await models.chat.completions.create(
                model=decided["provider_model"], messages=messages, tools=TOOLS
            )
            assert answer.usage is not None
            spent += REGISTRY[decided["model"]].cost(
                Usage(answer.usage.prompt_tokens, answer.usage.completion_tokens)
            )
            estimated += decided["estimated_cost_usd"]
            reply = answer.choices[0].message
            if not reply.tool_calls:
                break
            messages.append(reply.model_dump(exclude_none=True))
            for call in reply.tool_calls:
                arguments = json.loads(call.function.arguments)
                content, failed = find_order(**arguments)
                history.append({"name": call.function.name, "ok": not failed, "arguments": arguments})
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    await models.close()

    assert [r["model"] for r in routed] == ["small", "small", "large", "large"]
    assert reply.content == "It ships tomorrow."
    assert llm_server.pending("small") == llm_server.pending("large") == 0
    handover = routed[2]["reasons"][0]
    assert handover.startswith("2 tool errors in a row and a repeated call: predicted failure ")
    assert handover.endswith(f" > {threshold:.2f}") and routed[2]["policy"] == "learned-escalation"
    assert (
        routed[3]["reasons"][0]
        == f"run 'order-7' was handed up to tier 2 at step 3 ({handover}); it stays there"
    )
    # What the agent paid follows what route estimated: the large model's steps cost the most.
    assert spent > 0 and estimated > 0
    large = [r["estimated_cost_usd"] for r in routed[2:]]
    assert min(large) > max(r["estimated_cost_usd"] for r in routed[:2])
