"""The `gearshift-mcp` script over stdio, written raw lines: every line gets the answer JSON-RPC 2.0 requires.

A line that is not JSON (or too deeply nested to parse) is answered `-32700 Parse error` with
`id: null`, JSON that is no request `-32600 Invalid Request`; the server keeps serving after each.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from mcp_testbed import INITIALIZE, LOCAL_KEY, MODELS, gearshift_mcp_command, server_env, write_config

from gearshift.testing import LocalOpenAIServer

# One server process for the module (each start costs seconds): every test's lines go to the same
# process, which must keep serving after each, as it would for a client that sent them in turn.
pytestmark = pytest.mark.asyncio(loop_scope="module")


class RawStdio:
    """A `gearshift-mcp` process, written and read one JSON-RPC line at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def send(self, line: str | bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
        await self.process.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        assert line, "the server closed stdout"
        message: dict[str, Any] = json.loads(line)
        return message

    async def ask(self, line: str | bytes) -> dict[str, Any]:
        await self.send(line)
        return await self.receive()


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=MODELS, api_key=LOCAL_KEY) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stdio(
    llm_server: LocalOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RawStdio]:
    folder = tmp_path_factory.mktemp("stdio")
    config = write_config(folder, llm_server)
    process = await asyncio.create_subprocess_exec(
        gearshift_mcp_command(), "--config", str(config),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=server_env(), cwd=str(folder), limit=2**24,
    )  # fmt: skip
    raw = RawStdio(process)
    try:
        initialized = await raw.ask(json.dumps(INITIALIZE))
        assert initialized["id"] == 1 and "result" in initialized
        await raw.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        yield raw
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


def _deep(depth: int) -> str:
    return '{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"m": ' + "[" * depth + "]" * depth + "}}"


PARSE_ERRORS = {
    "not-json": "this is not json",
    "cut-short": '{"jsonrpc": "2.0", "id": 5, "method": "ping"',
    "deep-array": "[" * 100_000 + "]" * 100_000,
    "deep-request": _deep(50_000),
}


async def test_an_unparsable_line_gets_a_parse_error_and_the_server_goes_on(stdio: RawStdio) -> None:
    # One server for every case: it must survive them all in turn.
    for name, line in PARSE_ERRORS.items():
        reply = await stdio.ask(line)
        assert reply == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}, (
            name
        )
        ping = await stdio.ask(json.dumps({"jsonrpc": "2.0", "id": name, "method": "ping"}))
        assert ping == {"jsonrpc": "2.0", "id": name, "result": {}}


NOT_REQUESTS: list[tuple[object, int | str | None]] = [
    ({"a": 1}, None),
    ({"jsonrpc": "2.0", "id": 12, "method": 5}, 12),
    ({"jsonrpc": "2.0", "id": "x-1", "params": {}}, "x-1"),
    ([1, 2], None),
    ("ping", None),
    (42, None),
]


async def test_json_that_is_no_request_gets_an_invalid_request_error(stdio: RawStdio) -> None:
    for message, request_id in NOT_REQUESTS:
        reply = await stdio.ask(json.dumps(message))
        assert reply == {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": -32600, "message": "Invalid Request"},
        }, message


async def test_a_burst_of_bad_lines_is_answered_in_order_among_good_ones(stdio: RawStdio) -> None:
    lines = ["nope", json.dumps({"jsonrpc": "2.0", "id": 20, "method": "ping"}), "[" * 5000, "{}"]
    for line in lines:
        await stdio.send(line)
    replies = [await stdio.receive() for _ in lines]
    assert [(r.get("id"), r.get("error", {}).get("code")) for r in replies] == [
        (None, -32700),
        (20, None),
        (None, -32700),
        (None, -32600),
    ]
    tools = await stdio.ask(json.dumps({"jsonrpc": "2.0", "id": 21, "method": "tools/list"}))
    assert {tool["name"] for tool in tools["result"]["tools"]} == {
        "route",
        "escalate",
        "budget_status",
        "feedback",
    }


async def test_a_lone_surrogate_escape_is_answered_by_its_tool_with_the_call_s_id(stdio: RawStdio) -> None:
    # `"\ud800"` (half of an emoji a client cut in two) is JSON, but the SDK's parser refuses it: the
    # call got a parse error without its id, so the client waited for an answer until it timed out.
    call = {"name": "route", "arguments": {"prompt": "Summarise this: \ud83d"}}
    line = json.dumps({"jsonrpc": "2.0", "id": 30, "method": "tools/call", "params": call})
    assert "\\ud83d" in line
    reply = await stdio.ask(line)
    assert reply["id"] == 30 and reply["result"]["isError"] is True
    (content,) = reply["result"]["content"]
    assert "prompt: holds a lone UTF-16 surrogate" in content["text"]
    not_a_request = await stdio.ask(json.dumps({"jsonrpc": "2.0", "id": 31, "oops": "\udc00"}))
    assert not_a_request["id"] == 31 and not_a_request["error"]["code"] == -32600
