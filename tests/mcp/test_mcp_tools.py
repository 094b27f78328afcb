"""The server in-process through `mcp.Client`: tool schemas, `route` decisions, resources, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_testbed import EASY, HARD, error_text, local_router, resource_json, structured

from gearshift import Router, open_decision_log
from gearshift.testing import LocalOpenAIServer
from gearshift_mcp import RouterTools, build_server


async def test_the_tools_are_listed_with_input_and_output_schemas(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {"route", "escalate", "budget_status", "feedback"}
        for tool in tools.values():
            assert tool.description and len(tool.description) > 100  # written for the calling model
            assert tool.output_schema is not None and tool.output_schema["type"] == "object"
            for name, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), f"{tool.name}.{name} has no description"
        route = tools["route"].input_schema
        assert route["required"] == ["prompt"]
        assert route["properties"]["step_type"]["enum"] == [
            "plan", "act", "observe", "reflect", "respond", "summarize", "other", "recover"
        ]  # fmt: skip
        # A misspelt constraint must be refused, not silently ignored.
        assert route["$defs"]["RouteConstraints"]["additionalProperties"] is False
        assert set(tools["escalate"].input_schema["required"]) == {"problem", "reason"}
        assert {"answer", "model", "cost_usd", "budget_left_usd"} <= set(
            tools["escalate"].output_schema["properties"]
        )
        assert tools["route"].annotations is not None and tools["route"].annotations.read_only_hint


async def test_tool_descriptions_carry_no_source_indentation(server: MCPServer[RouterTools]) -> None:
    # A description is the tool's docstring, shown to the calling model and in the client's UI; before
    # Python 3.13 a docstring keeps the indentation of the source it was written in.
    async with Client(server) as client:
        for tool in (await client.list_tools()).tools:
            assert tool.description is not None
            assert tool.description == tool.description.strip(), tool.name
            assert not [line for line in tool.description.splitlines() if line.startswith(" ")], tool.name


async def test_optional_arguments_are_advertised_with_their_own_type(server: MCPServer[RouterTools]) -> None:
    # Clients that build a form or convert command-line strings from the schema read a property's
    # `type`: the Inspector CLI sent `--tool-arg step_index=3` as the string "3" (refused) while the
    # schema said `anyOf: [integer, null]`. Leaving an optional argument out is how to not set it.
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        for tool in tools:
            schema = tool.input_schema
            holders = [schema, *schema.get("$defs", {}).values()]
            for holder in holders:
                for name, prop in holder["properties"].items():
                    assert "type" in prop and "anyOf" not in prop, f"{tool.name}.{name}: {prop}"
                    assert prop.get("default", "unset") is not None, f"{tool.name}.{name}: {prop}"
        route = next(tool for tool in tools if tool.name == "route").input_schema["properties"]
        assert route["step_index"]["type"] == "integer" and route["step_index"]["minimum"] == 0
        assert route["constraints"]["type"] == "object" and "$ref" in route["constraints"]
        # An explicit null still means "not set".
        unset = {"prompt": EASY, "step_index": None, "constraints": None}
        assert structured(await client.call_tool("route", unset))["model"] == "small"


async def test_a_number_written_as_text_is_read_as_that_number(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    # Models, and clients that send every argument as a string, write "0.5" for 0.5: it was refused
    # ("Input should be a valid number") while the strictness that refused it was meant for `true`.
    async with Client(server) as client:
        bounded = {"prompt": HARD, "step_index": "3", "constraints": {"max_tier": "1", "max_cost_usd": "0.5"}}
        assert structured(await client.call_tool("route", bounded))["model"] == "small"
        asked = {"problem": "p", "reason": "r", "max_tokens": "100", "max_cost_usd": "1e-1", "min_tier": "2"}
        assert structured(await client.call_tool("escalate", asked))["model"] == "large"
        scored = await client.call_tool("feedback", {"request_id": "abc", "score": "0.5"})
        assert "log.path" in error_text(scored)  # past the arguments: this router keeps no log
        for refused in (
            {"step_index": "true"},
            {"step_index": "3.5"},
            {"constraints": {"max_cost_usd": "NaN"}},
        ):
            result = await client.call_tool("route", {"prompt": EASY, **refused})
            assert result.is_error and "invalid arguments" in error_text(result), refused
    (sent,) = llm_server.requests
    assert 100 in (sent.body.get("max_tokens"), sent.body.get("max_completion_tokens"))


async def test_null_for_any_optional_argument_means_not_given(server: MCPServer[RouterTools]) -> None:
    # Models send null for the optional arguments they leave out; those whose default is not null
    # (turn_start = 0, tried = "", source = "agent") refused it: "Input should be a valid string".
    async with Client(server) as client:
        tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        given = {"prompt": EASY, "problem": "p", "reason": "r", "request_id": "abc", "score": 1}
        for name, schema in tools.items():
            required = set(schema.get("required", ()))
            nulls = {arg: None for arg in schema["properties"] if arg not in required}
            result = await client.call_tool(name, {**{arg: given[arg] for arg in required}, **nulls})
            assert "invalid arguments" not in error_text(result), name
        routed = structured(await client.call_tool("route", {"prompt": EASY, "tool_history": None}))
        assert routed["model"] == "small"
        asked = {"problem": "p", "reason": "r", "tried": None, "material": None, "max_tokens": None}
        assert structured(await client.call_tool("escalate", asked))["model"] == "large"
        # A required argument's null is still refused, and says so.
        missing = await client.call_tool("escalate", {"problem": "p", "reason": None})
        assert missing.is_error and "reason: Input should be a valid string, got null" in error_text(missing)


async def test_an_easy_task_routes_to_the_cheap_model_and_a_hard_one_to_the_strong(
    server: MCPServer[RouterTools], llm_server: LocalOpenAIServer
) -> None:
    async with Client(server) as client:
        easy = structured(await client.call_tool("route", {"prompt": EASY}))
        assert (easy["model"], easy["tier"], easy["provider"]) == ("small", 1, "local")
        assert easy["fallbacks"] == ["large", "large-b"]
        assert easy["estimated_cost_usd"] > 0 and easy["reasons"]
        assert easy["budget_left_usd"] is None  # this router keeps no budget

        hard = structured(await client.call_tool("route", {"prompt": HARD, "step_type": "plan"}))
        assert (hard["model"], hard["tier"]) == ("large", 2)
        assert hard["estimated_cost_usd"] > easy["estimated_cost_usd"]
        assert any("plan step" in reason for reason in hard["reasons"])
        assert llm_server.requests == []  # routing calls no model


async def test_recover_is_routed_as_the_reflect_step(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        recover = structured(await client.call_tool("route", {"prompt": EASY, "step_type": "recover"}))
        reflect = structured(await client.call_tool("route", {"prompt": EASY, "step_type": "reflect"}))
        act = structured(await client.call_tool("route", {"prompt": EASY, "step_type": "act"}))
    assert recover["reasons"] == reflect["reasons"] != act["reasons"]


async def test_failing_tool_calls_move_the_step_up_a_tier(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        calm = [{"name": "search", "ok": True}]
        failing = [
            {"name": "search", "ok": True},
            {"name": "fetch", "ok": False},
            {"name": "fetch", "ok": False},
        ]
        before = structured(await client.call_tool("route", {"prompt": EASY, "tool_history": calm}))
        after = structured(await client.call_tool("route", {"prompt": EASY, "tool_history": failing}))
        assert before["tier"] == 1
        assert after["tier"] == 2
        assert any("consecutive tool errors" in reason for reason in after["reasons"])


async def test_a_new_user_turn_ends_the_error_streak(server: MCPServer[RouterTools]) -> None:
    failing = [{"name": "fetch", "ok": False}, {"name": "fetch", "ok": False}]
    async with Client(server) as client:
        same_turn = structured(await client.call_tool("route", {"prompt": EASY, "tool_history": failing}))
        new_turn = structured(
            await client.call_tool("route", {"prompt": EASY, "tool_history": failing, "turn_start": 2})
        )
    assert same_turn["tier"] == 2
    assert new_turn["tier"] == 1
    assert not any("consecutive tool errors" in reason for reason in new_turn["reasons"])


async def test_repeating_the_same_tool_call_moves_the_step_up_a_tier(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        same = {"name": "fetch", "ok": True, "arguments": {"url": "https://example.com", "page": 1}}
        loop = [
            same,
            {**same, "arguments": {"page": 1, "url": "https://example.com"}},
            same,
        ]  # key order differs
        decided = structured(await client.call_tool("route", {"prompt": EASY, "tool_history": loop}))
        assert decided["tier"] == 2
        assert any("loop suspected" in reason for reason in decided["reasons"])


async def test_constraints_bound_the_tier_and_the_cost(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        capped = structured(await client.call_tool("route", {"prompt": HARD, "constraints": {"max_tier": 1}}))
        assert capped["model"] == "small"
        raised = structured(await client.call_tool("route", {"prompt": EASY, "constraints": {"min_tier": 2}}))
        assert raised["model"] == "large"
        cheap = structured(
            await client.call_tool("route", {"prompt": HARD, "constraints": {"max_cost_usd": 0.0005}})
        )
        assert cheap["model"] == "small" and cheap["estimated_cost_usd"] <= 0.0005


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"prompt": EASY, "constraints": {"min_tier": 7}}, "unknown tier 7; the models have tiers 1, 2"),
        ({"prompt": EASY, "constraints": {"max_tier": 3}}, "max_tier: unknown tier 3"),
        (
            {"prompt": EASY, "constraints": {"min_tier": 2, "max_tier": 1}},
            "min_tier 2 is above max_tier 1",
        ),
        ({"prompt": EASY, "constraints": {"max_cost_usd": -0.5}}, "constraints.max_cost_usd"),
        ({"prompt": EASY, "constraints": {"max_cost_usd": 1e-12}}, "above the caller's max_cost_usd"),
        ({"prompt": EASY, "constraints": {"max_teir": 2}}, "constraints.max_teir"),
        ({"prompt": EASY, "step_type": "dance"}, "step_type"),
        ({"prompt": EASY, "step_index": -1}, "step_index"),
        ({"prompt": EASY, "step_index": True}, "step_index: Input should be a valid integer, got true"),
        ({"prompt": EASY, "constraints": {"min_tier": True}}, "constraints.min_tier: Input should be"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": " \n\t"}, "prompt: is blank"),  # was routed (and sent to a classifier) as a step
        ({"step_type": "plan"}, "invalid arguments: prompt: is required"),
        ({"prompt": EASY, "tool_history": [{"ok": False}]}, "tool_history[0].name: is required"),
        ({"prompt": EASY, "step_index": "three"}, 'valid integer, got the string "three"'),
        ({"prompt": EASY, "stepIndex": 3}, "unknown argument 'stepIndex'; the known arguments are prompt,"),
        ({"prompt": EASY, "step_type": "x" * 500}, 'got the string "xxx'),
        ({"prompt": "Summarise: \ud83d"}, "prompt: holds a lone UTF-16 surrogate (half of a character"),
        ({"prompt": EASY, "turn_start": -1}, "turn_start"),
        ({"prompt": EASY, "turn_start": 1}, "turn_start must be between 0 and the 0 tool calls, got 1"),
    ],
)
async def test_bad_arguments_give_an_error_result_that_says_what_is_wrong(
    server: MCPServer[RouterTools], arguments: dict[str, object], says: str
) -> None:
    async with Client(server) as client:
        result = await client.call_tool("route", arguments)
        assert result.is_error
        text = error_text(result)
        assert says in text
        # Plain words: not pydantic's text, which named the SDK's argument model, showed the input as
        # a Python repr and sent the model to pydantic's web site.
        for python in ("routeArguments", "input_value", "input_type", "pydantic.dev", "[type="):
            assert python not in text
        assert len(text) < 400  # a long argument is cut short, not echoed whole
        # The server keeps serving.
        assert structured(await client.call_tool("route", {"prompt": EASY}))["model"] == "small"


async def test_an_unknown_tool_is_an_error_result(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        result = await client.call_tool("rout", {"prompt": EASY})
        assert result.is_error and "rout" in error_text(result)


async def test_the_registry_resource_lists_every_model_with_tier_and_prices(
    server: MCPServer[RouterTools],
) -> None:
    async with Client(server) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert listed == {"gearshift://models", "gearshift://decisions/recent"}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"gearshift://budgets/{key}"}
        models = resource_json(await client.read_resource("gearshift://models"))
        assert [(m["id"], m["tier"]) for m in models] == [("small", 1), ("large", 2), ("large-b", 2)]
        assert models[1]["prices"] == {
            "input": 2.0,
            "output": 8.0,
            "cache_read": None,
            "cache_write": None,
            "cache_write_1h": None,
            "long_context": [],
        }


async def test_recent_decisions_leave_the_prompt_out_by_default(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        await client.call_tool("route", {"prompt": EASY, "agent_id": "researcher", "step_type": "act"})
        await client.call_tool("route", {"prompt": HARD})
        recent = resource_json(await client.read_resource("gearshift://decisions/recent"))
        assert [(d["tool"], d["model"], d["agent_id"]) for d in recent] == [
            ("route", "small", "researcher"),
            ("route", "large", None),
        ]
        assert recent[0]["step_type"] == "act" and recent[0]["reasons"]
        assert all("prompt" not in d for d in recent)
        assert EASY not in str(recent)


async def test_recent_decisions_keep_the_prompt_when_the_log_includes_prompts(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    router = local_router(
        llm_server, decision_log=open_decision_log(tmp_path / "log.jsonl", include_prompts=True)
    )
    async with router, Client(build_server(router=router)) as client:
        await client.call_tool("route", {"prompt": EASY})
        recent = resource_json(await client.read_resource("gearshift://decisions/recent"))
    assert recent[0]["prompt"] == EASY


async def test_budget_status_says_when_no_budget_is_configured(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        status = structured(await client.call_tool("budget_status", {"agent_id": "researcher"}))
        assert status == {"budgets_configured": False, "keys": []}
        document = resource_json(await client.read_resource("gearshift://budgets/researcher"))
        assert document == {"budgets_configured": False, "keys": []}


def test_a_server_takes_a_config_or_a_router_not_both(router: Router) -> None:
    with pytest.raises(TypeError, match="either config or router"):
        build_server("gearshift.toml", router=router)
