"""The `feedback` tool: an agent scores an `escalate` answer by its request id; the score lands in the
decision log; bad scores and a router without a log are error results that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.mcpserver import MCPServer
from mcp_testbed import (
    KEY_ENV,
    LOCAL_KEY,
    error_text,
    gearshift_mcp_command,
    local_router,
    server_env,
    structured,
    write_config,
)

from gearshift import open_decision_log, read_records
from gearshift.reporting import build_report
from gearshift.testing import LocalOpenAIServer
from gearshift_mcp import RouterTools, build_server

PROBLEM = {"problem": "Explain why the cache misses.", "reason": "stuck", "agent_id": "importer"}


async def test_an_escalate_answer_is_scored_by_its_request_id(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    router = local_router(llm_server, decision_log=open_decision_log(tmp_path / "log.jsonl"))
    async with router, Client(build_server(router=router)) as client:
        answer = structured(await client.call_tool("escalate", PROBLEM))
        # A made-up or mistyped id was answered ok, and its score landed on nothing.
        made_up = await client.call_tool("feedback", {"request_id": "req-42", "score": 1})
        assert made_up.is_error
        assert "'req-42' is not the id of a call in the decision log" in error_text(made_up)
        scored = structured(
            await client.call_tool(
                "feedback", {"request_id": answer["request_id"], "score": 0.75, "comment": "close"}
            )
        )
    assert scored == {"request_id": answer["request_id"], "score": 0.75, "source": "agent"}
    records = list(read_records(tmp_path / "log.jsonl"))
    feedback = [r for r in records if r["kind"] == "feedback"]
    assert len(feedback) == 1  # the made-up id's score is not among them
    assert (feedback[0]["score"], feedback[0]["source"], feedback[0]["comment"]) == (0.75, "agent", "close")
    assert feedback[0]["request_id"] in {r["request_id"] for r in records if r["kind"] == "attempt"}


async def test_a_second_score_from_the_same_source_replaces_the_first(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # An agent that scored an answer 1, then saw the tests fail and scored it 0, was told "score 0.0"
    # while the report (and export-outcomes' rows) averaged both to 0.5; a resent score counted twice.
    router = local_router(llm_server, decision_log=open_decision_log(tmp_path / "log.jsonl"))
    async with router, Client(build_server(router=router)) as client:
        rid = structured(await client.call_tool("escalate", PROBLEM))["request_id"]
        for score, source in ((1, "agent"), (0, "agent"), (0, "agent"), (0.5, "user")):
            structured(
                await client.call_tool("feedback", {"request_id": rid, "score": score, "source": source})
            )
    records = list(read_records(tmp_path / "log.jsonl"))
    assert len([r for r in records if r["kind"] == "feedback"]) == 4  # every score is kept in the log
    assert build_report(records)["feedback"] == {"count": 2, "mean_score": 0.25}  # agent's 0, user's 0.5


async def test_bad_feedback_is_an_error_result(server: MCPServer[RouterTools]) -> None:
    async with Client(server) as client:
        out_of_range = await client.call_tool("feedback", {"request_id": "abc", "score": 1.5})
        assert out_of_range.is_error and "score" in error_text(out_of_range)
        boolean = await client.call_tool("feedback", {"request_id": "abc", "score": True})  # was 1.0
        assert boolean.is_error and "score: Input should be a valid number, got true" in error_text(boolean)
        no_log = await client.call_tool("feedback", {"request_id": "abc", "score": 1})
        assert no_log.is_error and "log.path" in error_text(no_log)


@pytest.mark.parametrize("log_name", ["decisions.jsonl", "decisions.db"])
async def test_an_answer_given_before_a_restart_is_scored_after_it(
    llm_server: LocalOpenAIServer, tmp_path: Path, log_name: str
) -> None:
    # Claude Desktop restarts its servers often: the server knew only the ids it issued since it
    # started, so a score for an answer from before the restart was refused, and lost.
    log = tmp_path / log_name
    config = write_config(tmp_path, llm_server, extra=f'\n[log]\npath = "{log.as_posix()}"\n')
    params = StdioServerParameters(
        command=gearshift_mcp_command(),
        args=["--config", str(config)],
        env=server_env(**{KEY_ENV: LOCAL_KEY}),
        cwd=str(tmp_path),
    )
    with (tmp_path / "stderr.txt").open("w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            rid = structured(await client.call_tool("escalate", PROBLEM))["request_id"]
        async with Client(stdio_client(params, errlog=errlog)) as client:  # the server restarted
            scored = structured(await client.call_tool("feedback", {"request_id": rid, "score": 0}))
            made_up = await client.call_tool("feedback", {"request_id": "0" * 32, "score": 1})
            fed_back = await client.call_tool("feedback", {"request_id": "", "score": 1})
    assert scored == {"request_id": rid, "score": 0.0, "source": "agent"}
    assert made_up.is_error and f"'{'0' * 32}' is not the id of" in error_text(made_up)
    assert fed_back.is_error
    feedback = [r for r in read_records(log) if r["kind"] == "feedback"]
    assert [(f["request_id"], f["score"]) for f in feedback] == [(rid, 0.0)]
