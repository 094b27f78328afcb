"""Streamable HTTP on 127.0.0.1: with and without the bearer token, and the refusal to listen openly."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_testbed import (
    INITIALIZE,
    KEY_ENV,
    LOCAL_KEY,
    gearshift_mcp_command,
    server_env,
    structured,
    write_config,
)

from gearshift import ConfigError
from gearshift.testing import LocalOpenAIServer
from gearshift_mcp import TOKEN_ENV, build_server, main
from gearshift_mcp._http import check_bind, http_app, is_loopback

TOKEN = "t0k3n-for-the-mcp-http-tests-5f1c9a"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _serving(token: str | None, config: Path, *, host: str = "127.0.0.1") -> Iterator[str]:
    """The server's HTTP app for a listener on `host`, under uvicorn in a thread (on 127.0.0.1,
    whatever loopback spelling `host` is); yields the MCP endpoint URL."""
    port = _free_port()
    app = http_app(build_server(config, bearer_token=token), host=host)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mcp-http-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the HTTP server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@asynccontextmanager
async def _client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def _post_initialize(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            url, json=INITIALIZE, headers={"Accept": "application/json, text/event-stream", **headers}
        )


async def test_with_a_token_only_requests_that_carry_it_are_served(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    with _serving(TOKEN, write_config(tmp_path, llm_server)) as url:
        for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": TOKEN}):
            refused = await _post_initialize(url, headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
        accepted = await _post_initialize(url, {"Authorization": f"Bearer {TOKEN}"})
        assert accepted.status_code == 200
        async with _client(url, TOKEN) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {
                "route",
                "escalate",
                "budget_status",
                "feedback",
            }
            decided = structured(await client.call_tool("route", {"prompt": "hello"}))
            assert decided["model"] == "small"


async def test_on_loopback_without_a_token_every_local_request_is_served(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    with _serving(None, write_config(tmp_path, llm_server)) as url:
        assert (await _post_initialize(url, {})).status_code == 200
        async with _client(url, None) as client:
            decided = structured(await client.call_tool("route", {"prompt": "hello", "agent_id": "a"}))
            assert decided["model"] == "small"
        # DNS rebinding: a page elsewhere must not reach the local server through the browser.
        foreign = await _post_initialize(url, {"Host": "evil.example", "Origin": "http://evil.example"})
        assert foreign.status_code in (403, 421)


@pytest.mark.parametrize("host", ["127.0.0.2", "LOCALHOST", "[::1]", "0:0:0:0:0:0:0:1"])
async def test_every_loopback_spelling_is_protected_from_dns_rebinding(
    llm_server: LocalOpenAIServer, tmp_path: Path, host: str
) -> None:
    # No token is asked on loopback, and the SDK checks Host and Origin only for 127.0.0.1,
    # localhost and ::1: `--host 127.0.0.2` served a page of evil.example through the browser.
    with _serving(None, write_config(tmp_path, llm_server), host=host) as url:
        port = url.split(":")[-1].split("/")[0]
        foreign_host = await _post_initialize(url, {"Host": f"evil.example:{port}"})
        foreign_origin = await _post_initialize(url, {"Origin": "http://evil.example"})
        assert (foreign_host.status_code, foreign_origin.status_code) == (421, 403)
        bare = host.strip("[]").lower()
        named = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"
        assert (await _post_initialize(url, {"Host": named})).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("example.com", False)],
)  # fmt: skip
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_listening_beyond_loopback_needs_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["--http", "--host", "0.0.0.0", "--port", "0"]) == 2
    message = capsys.readouterr().err
    assert "refusing to serve HTTP on 0.0.0.0 without a bearer token" in message
    assert f"Set {TOKEN_ENV}" in message
    check_bind("0.0.0.0", TOKEN)  # with a token it may
    check_bind("127.0.0.1", None)  # and on loopback without one


def test_a_short_token_is_refused(llm_server: LocalOpenAIServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GEARSHIFT_MCP_TOKEN is too short"):
        build_server(write_config(tmp_path, llm_server), bearer_token="short")


async def test_the_command_serves_http_with_the_token_from_the_environment(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, llm_server)
    port = _free_port()
    env = server_env(**{TOKEN_ENV: TOKEN, KEY_ENV: LOCAL_KEY})  # the key must not be printed either
    process = await asyncio.create_subprocess_exec(
        gearshift_mcp_command(), "--config", str(config), "--http", "--port", str(port),
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        await _wait_for_port(port, process)
        assert (await _post_initialize(url, {})).status_code == 401
        async with _client(url, TOKEN) as client:
            decided = structured(await client.call_tool("route", {"prompt": "hello", "step_type": "act"}))
            assert decided["model"] == "small"
    finally:
        if process.returncode is None:
            process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    stderr = err.decode()
    assert f"serving MCP over streamable HTTP at http://127.0.0.1:{port}/mcp" in stderr
    assert TOKEN not in stderr and LOCAL_KEY not in stderr


async def _wait_for_port(port: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.returncode is None, "gearshift-mcp --http exited early"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"gearshift-mcp --http did not listen on port {port}")


async def test_the_address_it_announces_takes_connections_at_once(
    llm_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    # With --port 0 the "serving at" line is the only way to learn the port, so a client connects as
    # soon as it reads it; that line came before the socket listened (while the router was still
    # being built), and the client was refused: "All connection attempts failed".
    config = write_config(tmp_path, llm_server)
    env = server_env(**{KEY_ENV: LOCAL_KEY})
    process = await asyncio.create_subprocess_exec(
        gearshift_mcp_command(), "--config", str(config), "--http", "--port", "0",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        assert line.startswith("gearshift-mcp: serving MCP over streamable HTTP at http://127.0.0.1:"), line
        assert not url.endswith(":0/mcp"), line
        assert (await _post_initialize(url, {})).status_code == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), timeout=30)
