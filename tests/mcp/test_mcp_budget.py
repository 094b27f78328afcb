"""Budgets through the MCP tools: a refused escalation charges nothing; spend shows in every tool; a
new user turn is paced over its own steps."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client, MCPError
from mcp_testbed import EASY, HARD, error_text, local_router, resource_json, structured

from gearshift import Router, read_records
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.budgets._spend_index import to_nano
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_mcp import build_server

PROBLEM = {"problem": "Explain why the cache misses.", "reason": "stuck", "agent_id": "importer"}


async def _budgeted(llm_server: LocalOpenAIServer, usd: float) -> Router:
    limits = [BudgetLimit(name="per agent", key="agent:*", usd=usd)]
    return local_router(llm_server, budgets=BudgetLedger(MemoryStore(), limits))


@pytest.fixture
async def tight(llm_server: LocalOpenAIServer) -> AsyncIterator[Router]:
    router = await _budgeted(llm_server, 0.000_01)
    yield router
    await router.aclose()


@pytest.fixture
async def roomy(llm_server: LocalOpenAIServer) -> AsyncIterator[Router]:
    router = await _budgeted(llm_server, 1.0)
    yield router
    await router.aclose()


async def test_a_refused_escalation_names_its_refusal_record(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # The refusal was logged under a request id the MCP client was never told.
    limits = [BudgetLimit(name="per agent", key="agent:*", usd=0.000_01)]
    log = open_decision_log(tmp_path / "log.jsonl")
    router = local_router(llm_server, budgets=BudgetLedger(MemoryStore(), limits), decision_log=log)
    async with Client(build_server(router=router)) as client:
        result = await client.call_tool("escalate", PROBLEM)
    await router.aclose()
    named = re.search(r"\(request id ([0-9a-f]+) in the decision log\)", error_text(result))
    assert result.is_error and named is not None, error_text(result)
    kinds = {r["kind"] for r in read_records(tmp_path / "log.jsonl") if r["request_id"] == named[1]}
    assert kinds == {"decision", "budget_refusal"}


async def test_an_escalation_the_budget_cannot_cover_is_refused_and_charges_nothing(
    tight: Router, llm_server: LocalOpenAIServer
) -> None:
    async with Client(build_server(router=tight)) as client:
        result = await client.call_tool("escalate", PROBLEM)
        assert result.is_error
        text = error_text(result)
        # It names the limit, what was spent and what the call needed.
        for part in ("budget 'per agent'", "agent:importer", "limit $0.00001", "spent $0", "call needs"):
            assert part in text
        assert llm_server.requests == []  # no model was called
        status = structured(await client.call_tool("budget_status", {"agent_id": "importer"}))
    (key,) = status["keys"]
    (limit,) = key["limits"]
    assert (limit["spent_usd"], limit["reserved_usd"], limit["remaining_usd"]) == (0.0, 0.0, 0.000_01)


async def test_an_escalation_is_charged_to_the_agent_and_shows_in_every_tool(
    roomy: Router, llm_server: LocalOpenAIServer
) -> None:
    async with Client(build_server(router=roomy)) as client:
        before = structured(await client.call_tool("route", {"prompt": EASY, "agent_id": "importer"}))
        assert before["budget_left_usd"] == 1.0
        answer = structured(await client.call_tool("escalate", PROBLEM))
        cost = answer["cost_usd"]
        assert cost > 0
        assert answer["budget_left_usd"] == pytest.approx(1.0 - cost)

        status = structured(await client.call_tool("budget_status", {"agent_id": "importer"}))
        assert status["budgets_configured"] is True
        (key,) = status["keys"]
        assert key["key"] == "agent:importer"
        (limit,) = key["limits"]
        assert limit["name"] == "per agent" and limit["mode"] == "hard" and limit["window"] == "lifetime"
        assert limit["spent_usd"] == pytest.approx(cost) and limit["reserved_usd"] == 0.0
        assert key["remaining_usd"] == pytest.approx(1.0 - cost)

        after = structured(await client.call_tool("route", {"prompt": EASY, "agent_id": "importer"}))
        assert after["budget_left_usd"] == pytest.approx(1.0 - cost)
        other = structured(await client.call_tool("route", {"prompt": EASY, "agent_id": "planner"}))
        assert other["budget_left_usd"] == 1.0  # each agent has its own limit

        everyone = structured(await client.call_tool("budget_status", {}))
        assert [k["key"] for k in everyone["keys"]] == ["agent:importer"]  # keys with spend so far
        document = resource_json(await client.read_resource("gearshift://budgets/importer"))
        assert document["keys"][0]["limits"][0]["spent_usd"] == pytest.approx(cost)
        assert resource_json(await client.read_resource("gearshift://budgets/agent:importer")) == document


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("route", {"prompt": EASY, "agent_id": "  "}),
        ("escalate", {**PROBLEM, "agent_id": " "}),
        ("escalate", {**PROBLEM, "run_id": "\t"}),
        ("budget_status", {"agent_id": " "}),
        ("budget_status", {"key": "agent:"}),
        ("budget_status", {"key": "run: "}),
    ],
)
async def test_a_blank_agent_run_or_key_is_refused_not_taken_as_a_key_of_spaces(
    roomy: Router, llm_server: LocalOpenAIServer, tool: str, arguments: dict[str, str]
) -> None:
    # A model that filled `agent_id` with a space was charged to `agent: `, a key no agent reads and
    # no per-agent figure shows; budget_status and the budget resource showed such a key's full budget.
    async with Client(build_server(router=roomy)) as client:
        result = await client.call_tool(tool, arguments)
        assert result.is_error and "is blank" in error_text(result), error_text(result)
        status = structured(await client.call_tool("budget_status", {}))
    assert llm_server.requests == []
    assert status["keys"] == []


@pytest.mark.parametrize("key", ["", "agent:", "%20"])
async def test_the_budget_resource_refuses_a_blank_key(roomy: Router, key: str) -> None:
    async with Client(build_server(router=roomy)) as client:
        with pytest.raises(MCPError, match="is blank"):
            await client.read_resource(f"gearshift://budgets/{key}")


# -- attempts to spend past a limit ----------------------------------------------------------------

VERBOSE = Reply(text="word " * 5120)  # ten times the output the router expects of a call


async def test_escalations_without_an_agent_are_charged_and_cannot_pass_a_catch_all_limit(
    llm_server: LocalOpenAIServer,
) -> None:
    limit = 0.02
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="everyone", key="*", usd=limit)])
    router = local_router(llm_server, budgets=ledger)
    for model in ("large", "large-b"):
        llm_server.script(model, *[VERBOSE] * 40)
    anonymous = {"problem": "Explain why the cache misses.", "reason": "stuck"}
    try:
        async with Client(build_server(router=router)) as client:

            async def caller() -> list[float]:
                costs = []
                for _ in range(40):
                    result = await client.call_tool("escalate", anonymous)
                    if result.is_error:
                        assert "budget 'everyone'" in error_text(result)
                        return costs
                    costs.append(structured(result)["cost_usd"])
                raise AssertionError("the limit never refused an escalation")

            costs = [c for run in await asyncio.gather(*(caller() for _ in range(8))) for c in run]
            status = structured(await client.call_tool("budget_status", {"agent_id": "anonymous"}))
    finally:
        await router.aclose()
    assert costs
    (key,) = status["keys"]
    (used,) = key["limits"]
    assert used["spent_usd"] == pytest.approx(sum(costs)) and used["reserved_usd"] == 0
    assert to_nano(used["spent_usd"]) <= to_nano(limit)  # not one nano-dollar past it
    assert all(r.body["max_tokens"] <= 512 for r in llm_server.requests)


@pytest.mark.parametrize("tool", ["route", "escalate", "budget_status"])
async def test_a_misspelt_argument_is_refused_with_the_known_ones_not_ignored(
    roomy: Router, llm_server: LocalOpenAIServer, tool: str
) -> None:
    arguments = {"route": {"prompt": EASY}, "escalate": dict(PROBLEM), "budget_status": {}}[tool]
    arguments.pop("agent_id", None)
    async with Client(build_server(router=roomy)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert listed[tool].input_schema["additionalProperties"] is False
        result = await client.call_tool(tool, {**arguments, "agentId": "importer"})
        assert result.is_error
        text = error_text(result)
        assert "unknown argument 'agentId'" in text and "agent_id" in text
        status = structured(await client.call_tool("budget_status", {}))
    assert llm_server.requests == []  # nothing was called, nothing charged
    assert status["keys"] == []


async def test_route_paces_a_new_user_turn_over_its_own_steps(llm_server: LocalOpenAIServer) -> None:
    # Two steps expected per turn and $0.006 for the run: a step may take $0.003, less than the hard
    # proof costs on `large` (~$0.0043 for 512 output tokens). Two tool calls of an earlier turn in
    # the history (`turn_start=2`) must not make the new turn's first step the run's last one.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=0.006)], expected_steps=2)
    router = local_router(llm_server, budgets=ledger)
    earlier = [{"name": "search", "ok": True}, {"name": "read", "ok": True}]
    try:
        async with Client(build_server(router=router)) as client:
            first = structured(await client.call_tool("route", {"prompt": HARD, "run_id": "chat"}))
            later = structured(
                await client.call_tool(
                    "route", {"prompt": HARD, "run_id": "chat", "tool_history": earlier, "turn_start": 2}
                )
            )
    finally:
        await router.aclose()
    for step in (first, later):
        assert step["model"] == "small" and step["budget_changed"] is True
        assert any("for ~2 more steps" in reason for reason in step["reasons"]), step["reasons"]
