"""A client cancels an `escalate` in flight: the model call is cancelled, charged and logged."""

from __future__ import annotations

from pathlib import Path

import anyio
from mcp import Client
from mcp_testbed import local_router, resource_json, structured

from gearshift import open_decision_log, read_records
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.testing import Delay, LocalOpenAIServer
from gearshift_mcp import build_server


async def test_a_cancelled_escalate_is_charged_and_logged_as_a_cancelled_attempt(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # The SDK cancels a tool call's task again at every await until it ends (anyio's cancel scope),
    # so the attempt's record, written after the settlement was awaited, was never written: the
    # budget was charged for the call and the decision log (and `gearshift report`) had no trace of it.
    llm_server.script("large", Delay(30))
    router = local_router(llm_server, decision_log=open_decision_log(tmp_path / "log.jsonl"))
    router.budgets = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    async with router, Client(build_server(router=router)) as client:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.call_tool, "escalate", {"problem": "p", "reason": "r", "agent_id": "a"})
            with anyio.fail_after(20):
                while not llm_server.requests:  # noqa: ASYNC110 (a server thread's list)
                    await anyio.sleep(0.02)
            tasks.cancel_scope.cancel()  # the client sends notifications/cancelled
        with anyio.fail_after(10):
            while (await router.budgets.status(("agent:a",))).limits[0].reserved_usd:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        (budget,) = structured(await client.call_tool("budget_status", {"agent_id": "a"}))["keys"]
        recent = resource_json(await client.read_resource("gearshift://decisions/recent"))
    attempts = [r for r in read_records(tmp_path / "log.jsonl") if r["kind"] == "attempt"]
    assert [(a["model"], a["ok"], a["cancelled"]) for a in attempts] == [("large", False, True)]
    (limit,) = budget["limits"]
    assert limit["spent_usd"] > 0 and limit["spent_usd"] == attempts[0]["cost_usd"]
    # The recent decisions show it too (they left a cancelled escalate out).
    assert [(d["tool"], d["model"], d.get("cancelled")) for d in recent] == [("escalate", "large", True)]
