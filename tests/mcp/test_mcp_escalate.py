"""`escalate` through the real router and the real `openai` SDK against a local OpenAI-compatible server."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_testbed import LOCAL_KEY, MARKERS, REGISTRY, error_text, resource_json, spec, structured

from gearshift import Deployment, GearshiftConfig, ModelRegistry, Router, SignalScorer, Usage
from gearshift.providers import OpenAIProvider
from gearshift.routing._deployments import DeploymentHealth
from gearshift.testing import Fail, LocalOpenAIServer, Reply
from gearshift_mcp import RouterTools, build_server

PROBLEM = {
    "problem": "The integration test for the CSV importer fails with UnicodeDecodeError on row 3.",
    "tried": "Opened the file with encoding='utf-8'; retried with errors='ignore', which drops data.",
    "reason": "I do not know how to detect the file's encoding reliably.",
    "material": "Row 3 holds the bytes 0xE9 0x74 0xE9.",
    "agent_id": "importer",
}


class Clock:
    """Real time plus a jump the test makes, so a breaker's open period passes without sleeping."""

    def __init__(self) -> None:
        self.jump = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.jump


def _sent_text(request_body: Any) -> str:
    return "\n".join(str(message.get("content")) for message in request_body["messages"])


async def test_escalate_asks_the_strongest_tier_and_returns_its_answer(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    async with Client(server) as client:
        answer = structured(await client.call_tool("escalate", PROBLEM))
    assert (answer["model"], answer["tier"]) == ("large", 2)
    assert "large" in answer["answer"]  # the simulated model names itself
    (sent,) = llm_server.requests
    assert sent.model == "large"
    text = _sent_text(sent.body)
    for part in ("problem", "tried", "reason", "material"):
        assert str(PROBLEM[part]) in text  # the stronger model sees the whole hand-over
    assert "got stuck and handed this problem to you" in text
    usage = Usage(answer["input_tokens"], answer["output_tokens"])
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert answer["cost_usd"] == pytest.approx(REGISTRY["large"].cost(usage))
    assert answer["attempts"] == [
        {
            "model": "large",
            "provider": "local",
            "ok": True,
            "probe": False,
            "cost_usd": answer["cost_usd"],
            "error": None,
        }
    ]
    assert answer["escalations"] == [] and answer["budget_left_usd"] is None
    assert answer["truncated"] is False


async def test_an_answer_cut_at_max_tokens_says_it_is_truncated(server: MCPServer[RouterTools]) -> None:
    """An answer the max_tokens cap cut off came back as if whole: the agent could not tell."""
    async with Client(server) as client:
        answer = structured(await client.call_tool("escalate", {**PROBLEM, "max_tokens": 3}))
    assert answer["output_tokens"] == 3 and answer["truncated"] is True


@pytest.mark.parametrize("empty", [Reply(text=""), Reply(text=" \n\t ")])
async def test_an_empty_answer_is_an_error_result_not_an_answer(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer, empty: Reply
) -> None:
    # A stronger model that answered with nothing was reported as an escalation that succeeded: the
    # agent got `answer: ""` as the solution to the problem it was stuck on. A cascade's gate rejects
    # such an answer ("the answer is empty"); at the top tier there is no one left to ask.
    llm_server.script("large", empty)
    async with Client(server) as client:
        result = await client.call_tool("escalate", PROBLEM)
        recent = resource_json(await client.read_resource("gearshift://decisions/recent"))
    assert result.is_error
    said = error_text(result)
    assert "large (tier 2) answered with nothing: the answer is empty" in said
    assert re.search(r"the call cost \$0\.\d{6}\. ", said)  # what it cost
    assert "(request id " in said  # which call, to score it or read its records
    assert recent[-1]["error"].startswith("large (tier 2) answered with nothing")
    assert [r.model for r in llm_server.requests] == ["large"]


async def test_an_empty_answer_below_the_top_tier_names_the_tier_to_ask(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    llm_server.script("small", Reply(text=""))
    easy = {"problem": "Which encoding uses 0xE9 for e-acute?", "reason": "unsure", "min_tier": 1}
    async with Client(server) as client:
        result = await client.call_tool("escalate", easy)
    assert result.is_error and "small (tier 1) answered with nothing" in error_text(result)
    assert "escalate again with min_tier 2" in error_text(result)


async def test_an_answer_max_tokens_cut_to_nothing_says_to_raise_it(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    llm_server.script("large", Reply(text="Antidisestablishmentarianism" * 4))  # one word, many tokens
    async with Client(server) as client:
        result = await client.call_tool("escalate", {**PROBLEM, "max_tokens": 1})
    assert result.is_error
    assert "max_tokens (1) cut it off before it wrote anything: raise it" in error_text(result)


async def test_a_provider_failure_falls_back_along_the_chain(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    llm_server.script("large", Fail(status=503))
    async with Client(server) as client:
        answer = structured(await client.call_tool("escalate", PROBLEM))
    assert answer["model"] == "large-b"
    failed, answered = answer["attempts"]
    assert (failed["model"], failed["ok"], answered["model"], answered["ok"]) == (
        "large",
        False,
        "large-b",
        True,
    )
    assert "server (HTTP 503)" in failed["error"]
    assert [r.model for r in llm_server.requests] == ["large", "large-b"]


async def test_the_attempts_name_the_deployment_and_tell_a_probe_from_an_answer(
    llm_server: LocalOpenAIServer,
) -> None:
    """`attempts` named neither the deployment called nor a probe: a tripped deployment's failed
    probe read as a call of the same model that failed and was answered by itself."""
    clock = Clock()
    large = spec("large", 2, 2.0).model_copy(
        update={"deployments": (Deployment(provider="local-b", model="large"),)}
    )
    router = Router(
        ModelRegistry([spec("small", 1, 0.1), large]),
        policy=SignalScorer(MARKERS),
        providers=[
            OpenAIProvider(name, api_key=LOCAL_KEY, base_url=llm_server.base_url, timeout=5.0)
            for name in ("local", "local-b")
        ],
        deployments=DeploymentHealth(failures=1, open_seconds=5.0),
        clock=clock,
    )
    async with router, Client(build_server(router=router)) as client:
        llm_server.script("large", Fail(status=503))
        tripped = structured(await client.call_tool("escalate", PROBLEM))
        clock.jump += 6.0  # the open period is over: the local deployment must answer a probe
        llm_server.script("large", Fail(status=503))
        probed = structured(await client.call_tool("escalate", PROBLEM))
    seen = [(a["model"], a["provider"], a["ok"], a["probe"]) for a in tripped["attempts"]]
    assert seen == [("large", "local", False, False), ("large", "local-b", True, False)]
    seen = [(a["model"], a["provider"], a["ok"], a["probe"]) for a in probed["attempts"]]
    assert seen == [("large", "local", False, True), ("large", "local-b", True, False)]
    assert [r.body.get("max_tokens") for r in llm_server.requests][2] == 1  # the probe


async def test_when_every_model_fails_the_error_lists_the_attempts_without_the_key(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    llm_server.script("large", Fail(status=500, body=f"upstream rejected key {LOCAL_KEY}"))
    llm_server.script("large-b", Fail(status=429, retry_after=3.0))
    async with Client(server) as client:
        result = await client.call_tool("escalate", PROBLEM)
        assert result.is_error
        text = error_text(result)
        assert "all 2 models tried for this request failed" in text
        assert "[server (HTTP 500): large]" in text and "[rate_limit (HTTP 429): large-b]" in text
        assert LOCAL_KEY not in text
        recent = resource_json(await client.read_resource("gearshift://decisions/recent"))
    assert recent[-1]["tool"] == "escalate" and "HTTP 500" in recent[-1]["error"]
    assert LOCAL_KEY not in str(recent)


async def test_a_weaker_answering_model_may_hand_the_problem_on(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    llm_server.script("small", Reply(tool_calls=[("escalate", {"reason": "needs a charset detector"})]))
    easy = {"problem": "Which encoding uses 0xE9 for e-acute?", "reason": "unsure", "min_tier": 1}
    async with Client(server) as client:
        answer = structured(await client.call_tool("escalate", easy))
    assert answer["model"] == "large"
    assert answer["escalations"] == [
        {"from_model": "small", "to_model": "large", "reason": "needs a charset detector"}
    ]
    assert [a["model"] for a in answer["attempts"]] == ["small", "large"]
    assert [r.model for r in llm_server.requests] == ["small", "large"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "  "}, "reason: is blank"),  # was charged as a call with no reason
        ({"problem": " \n"}, "problem: is blank"),
        ({"max_cost_usd": -1}, "max_cost_usd"),
        ({"min_tier": 5}, "unknown tier 5"),
        ({"max_tokens": 0}, "max_tokens"),
        # pydantic's lax mode read `true` as 1: a one-token answer, or a tier-1 model
        ({"max_tokens": True}, "max_tokens: Input should be a valid integer"),
        ({"min_tier": True}, "min_tier: Input should be a valid integer"),
        ({"max_cost_usd": True}, "max_cost_usd: Input should be a valid number"),
        ({"max_cost_usd": 1e-9}, "above the caller's max_cost_usd"),
    ],
)
async def test_bad_escalate_arguments_give_an_error_result_and_call_no_model(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer, change: dict[str, Any], says: str
) -> None:
    async with Client(server) as client:
        result = await client.call_tool("escalate", {**PROBLEM, **change})
    assert result.is_error and says in error_text(result)
    assert llm_server.requests == []


def _config(llm_server: LocalOpenAIServer, key_env: str) -> GearshiftConfig:
    return GearshiftConfig.from_dict(
        {
            "providers": {
                "local": {"kind": "openai", "base_url": llm_server.base_url, "api_key_env": key_env}
            },
            "models": [s.model_dump() for s in REGISTRY],
        }
    )


async def test_without_the_key_route_works_and_escalate_names_the_missing_variable(
    llm_server: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEARSHIFT_MCP_TEST_KEY", raising=False)
    async with Client(build_server(_config(llm_server, "GEARSHIFT_MCP_TEST_KEY"))) as client:
        assert structured(await client.call_tool("route", {"prompt": "hello"}))["model"] == "small"
        result = await client.call_tool("escalate", PROBLEM)
        assert result.is_error
        assert "Set GEARSHIFT_MCP_TEST_KEY (provider 'local')" in error_text(result)
        assert llm_server.requests == []  # refused before any call: no model is left cooling down

        monkeypatch.setenv("GEARSHIFT_MCP_TEST_KEY", LOCAL_KEY)  # keys are read at call time
        answer = structured(await client.call_tool("escalate", PROBLEM))
    assert answer["model"] == "large"


def _served_twice(llm_server: LocalOpenAIServer) -> GearshiftConfig:
    """The models on provider `local` (key in GEARSHIFT_MCP_TEST_KEY) and, as a deployment, on
    `mirror` (key in GEARSHIFT_MCP_MIRROR_KEY): the same local server, keyed two ways."""

    def provider(key_env: str) -> dict[str, Any]:
        return {"kind": "openai", "base_url": llm_server.base_url, "api_key_env": key_env}

    return GearshiftConfig.from_dict(
        {
            "providers": {
                "local": provider("GEARSHIFT_MCP_TEST_KEY"),
                "mirror": provider("GEARSHIFT_MCP_MIRROR_KEY"),
            },
            "models": [{**s.model_dump(), "deployments": [{"provider": "mirror"}]} for s in REGISTRY],
        }
    )


async def test_a_deployment_whose_key_is_set_lets_escalate_answer(
    llm_server: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key check looked at each model's own provider only, so escalate refused ("no API key is
    # set") a model whose other deployment had its key.
    monkeypatch.delenv("GEARSHIFT_MCP_TEST_KEY", raising=False)
    monkeypatch.setenv("GEARSHIFT_MCP_MIRROR_KEY", LOCAL_KEY)
    async with Client(build_server(_served_twice(llm_server))) as client:
        answer = structured(await client.call_tool("escalate", PROBLEM))
    assert answer["model"] == "large" and "large" in answer["answer"]

    monkeypatch.delenv("GEARSHIFT_MCP_MIRROR_KEY")
    async with Client(build_server(_served_twice(llm_server))) as client:
        result = await client.call_tool("escalate", PROBLEM)
    assert result.is_error
    assert "GEARSHIFT_MCP_MIRROR_KEY (provider 'mirror')" in error_text(result)
    assert "GEARSHIFT_MCP_TEST_KEY (provider 'local')" in error_text(result)
