"""The `gearshift-mcp` script as a subprocess, spoken to over stdio by the SDK's stdio client."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_testbed import (
    INITIALIZE,
    KEY_ENV,
    LOCAL_KEY,
    error_text,
    gearshift_mcp_command,
    resource_json,
    server_env,
    structured,
    write_config,
)

from gearshift import Router, load_config
from gearshift.budgets import LimitStatus
from gearshift.testing import Delay, LocalOpenAIServer


async def test_the_stdio_server_routes_and_names_the_missing_key(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    budgets = '\n[budgets]\nstore = "memory://"\n\n[[budgets.limits]]\nkey = "agent:*"\nusd = 0.25\n'
    config = write_config(tmp_path, llm_server, extra=budgets)
    params = StdioServerParameters(
        command=gearshift_mcp_command(), args=["--config", str(config)], env=server_env(), cwd=str(tmp_path)
    )
    with (tmp_path / "stderr.txt").open("w+", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"route", "escalate", "budget_status", "feedback"}
            decided = structured(
                await client.call_tool("route", {"prompt": "Say hello", "step_type": "respond"})
            )
            assert (decided["model"], decided["tier"]) == ("small", 1)
            refused = await client.call_tool("escalate", {"problem": "p", "reason": "r"})
            assert refused.is_error and f"Set {KEY_ENV} (provider 'local')" in error_text(refused)
            models = resource_json(await client.read_resource("gearshift://models"))
            assert [m["id"] for m in models] == ["small", "large", "large-b"]
        errlog.seek(0)
        stderr = errlog.read()
    # The server says at start-up which key is missing, on stderr (stdout is the protocol's).
    assert f"no API key set for {KEY_ENV} (provider 'local')" in stderr
    assert "`route` works without keys" in stderr
    assert llm_server.requests == []


async def test_a_key_left_at_the_config_block_s_placeholder_is_taken_as_unset(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # A user with one vendor's key leaves the other's "<paste your key here>" in Claude Desktop's
    # `env`: the server sent that text as an API key, and escalate's calls failed on it (a 401).
    config = write_config(tmp_path, llm_server)
    params = StdioServerParameters(
        command=gearshift_mcp_command(),
        args=["--config", str(config)],
        env=server_env(**{KEY_ENV: "<paste your key here>"}),
        cwd=str(tmp_path),
    )
    with (tmp_path / "stderr.txt").open("w+", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            refused = await client.call_tool("escalate", {"problem": "p", "reason": "r"})
            assert refused.is_error and f"Set {KEY_ENV} (provider 'local')" in error_text(refused)
        errlog.seek(0)
        stderr = errlog.read()
    assert f"{KEY_ENV} still holds the placeholder" in stderr
    assert f"no API key set for {KEY_ENV} (provider 'local')" in stderr
    assert llm_server.requests == []


def test_sigterm_mid_escalate_ends_the_server_and_settles_the_call(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # A client stops a server that does not exit once stdin is closed with SIGTERM, whose default
    # ended the process at once (exit -15): the escalate in flight kept its budget reservation
    # until it expired. Once SIGTERM was taken, the thread reading stdin kept the process alive.
    llm_server.script("large", Delay(30))
    budgets = (
        f'\n[budgets]\nstore = "sqlite:///{tmp_path / "budgets.db"}"\n\n'
        '[[budgets.limits]]\nkey = "agent:*"\nusd = 1.0\n'
    )
    config = write_config(tmp_path, llm_server, extra=budgets)
    process = subprocess.Popen(
        [gearshift_mcp_command(), "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(**{KEY_ENV: LOCAL_KEY}),
        cwd=tmp_path,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        call = {"name": "escalate", "arguments": {"problem": "p", "reason": "r", "agent_id": "a"}}
        for message in (
            INITIALIZE,
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
        ):
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()
        deadline = time.monotonic() + 30
        while not llm_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert llm_server.requests, "the escalate call never reached the model"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)  # stdin left open, as a client has it
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 143
    assert b"Traceback" not in stderr, stderr
    (limit,) = asyncio.run(_limits(config, "agent:a"))
    assert limit.reserved_usd == 0  # settled, not held until the reservation expires


async def _limits(config: Path, key: str) -> tuple[LimitStatus, ...]:
    async with Router.from_config(load_config(config)) as router:
        assert router.budgets is not None
        return (await router.budgets.status((key,))).limits
