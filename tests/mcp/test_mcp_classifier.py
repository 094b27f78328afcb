"""The LLM classifier behind the MCP server: `route` asks it, charges it, and says so in its reasons."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp_testbed import LOCAL_KEY, REGISTRY, structured

from gearshift import Router
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.learning import DefaultPolicy
from gearshift.policies import ClassifierConfig, ClassifierPolicy
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_mcp import build_server

TASK = "Write the migration plan for moving our billing database to Postgres."


def _classified_router(llm_server: LocalOpenAIServer) -> Router:
    # "small" classifies; a generous timeout, as the first call also imports the SDK.
    config = ClassifierConfig(model="small", timeout=30.0)
    policy = ClassifierPolicy(config, fallback=DefaultPolicy(), tiers=REGISTRY.tiers)
    provider = OpenAIProvider("local", api_key=LOCAL_KEY, base_url=llm_server.base_url, timeout=10.0)
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    return Router(REGISTRY, policy=policy, providers=[provider], budgets=ledger)


async def _route(llm_server: LocalOpenAIServer, reply: Reply, times: int = 1) -> list[dict[str, Any]]:
    """`route` results for TASK (agent "planner"), `times` over, with the classifier scripted to `reply`."""
    llm_server.script("small", reply)
    router = _classified_router(llm_server)
    try:
        async with Client(build_server(router=router)) as client:
            return [
                structured(await client.call_tool("route", {"prompt": TASK, "agent_id": "planner"}))
                for _ in range(times)
            ]
    finally:
        await router.aclose()


async def test_route_asks_the_classifier_once_per_prompt_and_charges_it_to_the_agent(
    llm_server: LocalOpenAIServer,
) -> None:
    first, again = await _route(llm_server, Reply("2"), times=2)
    assert (first["model"], first["tier"], first["policy"]) == ("large", 2, "classifier")
    assert first["reasons"][0].startswith("classifier small (") and first["reasons"][0].endswith("-> tier 2")
    assert again["model"] == "large" and again["reasons"][0] == "classifier small (cached): tier 2"
    (asked,) = llm_server.requests  # one classification; the chosen model is the caller's to call
    assert asked.model == "small" and TASK in asked.body["messages"][0]["content"]
    assert first["budget_left_usd"] is not None and first["budget_left_usd"] < 1.0  # the classification
    assert again["budget_left_usd"] == first["budget_left_usd"]  # a cached verdict costs nothing


async def test_route_falls_back_to_the_default_policy_on_a_garbage_classification(
    llm_server: LocalOpenAIServer,
) -> None:
    (routed,) = await _route(llm_server, Reply("Depends on the weather."))
    assert routed["policy"] == "default"
    assert routed["reasons"][0] == (
        "classifier small replied 'Depends on the weather.', which names no tier: the default policy decides"
    )


async def test_escalate_skips_the_classifier_that_route_still_asks(llm_server: LocalOpenAIServer) -> None:
    # escalate asks the top tier only, so no verdict could change its decision: it pays for none.
    llm_server.script("small", Reply("1"))
    router = _classified_router(llm_server)
    async with Client(build_server(router=router)) as client:
        answer = structured(
            await client.call_tool("escalate", {"problem": TASK, "reason": "the plan keeps missing a step"})
        )
        assert [r.model for r in llm_server.requests] == ["large"]  # the answer, and no classification
        assert answer["model"] == "large" and [a["model"] for a in answer["attempts"]] == ["large"]
        routed = structured(await client.call_tool("route", {"prompt": TASK, "agent_id": "planner"}))
    assert [r.model for r in llm_server.requests] == ["large", "small"]  # route asked the classifier
    assert routed["reasons"][0].startswith("classifier small (")
    await router.aclose()
