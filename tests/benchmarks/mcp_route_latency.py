"""Latency of the MCP `route` tool, as a client sees it: over stdio and over streamable HTTP.

Each transport runs the real `gearshift-mcp` command as a subprocess (the built-in model registry; no
key is needed, since `route` calls no model) and the SDK's client calls `route` `--n` times after a
warm-up. For reference, the same calls are also made in-process (`mcp.Client(server)`, no transport),
the bare decision (`Router.adecide`) is timed, and a minimal SDK server (one `route` tool returning a
constant) runs over stdio: that is the floor the MCP SDK itself sets, whatever the tool does.

Wall-clock latency depends on what else the machine runs; the CPU time one call costs does not, so it
is reported too: the client's (this process) and, on Linux, the server subprocess's (from /proc).

    uv run python tests/benchmarks/mcp_route_latency.py [--n 500] [--json]

Prints a JSON object last: {"stdio_p50_ms", "stdio_p99_ms", "stdio_client_cpu_ms", "stdio_server_cpu_ms",
the same four for "http" and for "floor_stdio", "inprocess_p50_ms", "inprocess_p99_ms",
"inprocess_cpu_ms", "decide_p50_ms", "load_avg_1m", "n"}. CPU figures are per call; a server figure is
null where /proc is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from gearshift import ChatRequest, Message, Router, StepContext, StepType
from gearshift_mcp import build_server

ARGUMENTS: dict[str, Any] = {
    "prompt": "Summarise the failing test's output and say which file to open next.",
    "step_type": "observe",
    "agent_id": "bench",
    "tool_history": [{"name": "run_tests", "ok": False}, {"name": "read_file", "ok": True}],
}
TOKEN = "benchmark-token-0123456789abcdef"
WARMUP = 20
FLOOR_SERVER = """
from typing import Any
from mcp.server.mcpserver import MCPServer
server = MCPServer("floor", log_level="WARNING")
ANSWER = {"model": "m", "tier": 1, "reasons": ["a reason"] * 4, "fallbacks": ["f"] * 6}
@server.tool()
async def route(prompt: str, step_type: str = "", agent_id: str = "", tool_history: list[Any] = []
) -> dict[str, Any]:
    return ANSWER
server.run()
"""


@dataclass
class Run:
    """Per-call wall times (ms) and the CPU the whole run took on each side (ms)."""

    times: list[float]
    client_cpu_ms: float
    server_cpu_ms: float | None


def _command() -> str:
    script = Path(sys.executable).with_name("gearshift-mcp")
    found = str(script) if script.exists() else shutil.which("gearshift-mcp")
    if not found:
        raise SystemExit("gearshift-mcp is not installed: run `uv sync`")
    return found


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEARSHIFT_CONFIG", "GEARSHIFT_MCP_TOKEN")}
    return {**env, **extra}


def _children_cpu_ms() -> float | None:
    """CPU time (user + system) the running child processes have used so far; None without /proc."""
    try:
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        children = [
            pid
            for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        total = 0
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    except (OSError, ValueError):
        return None
    return total * tick_ms


async def _timed(call: Callable[[], Awaitable[object]], n: int) -> Run:
    for _ in range(WARMUP):
        await call()
    times = []
    cpu, server_cpu = time.process_time(), _children_cpu_ms()
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    client_cpu = (time.process_time() - cpu) * 1000
    server_after = _children_cpu_ms()
    server = None if server_cpu is None or server_after is None else server_after - server_cpu
    return Run(times, client_cpu, server)


async def _route_times(client: Client, n: int) -> Run:
    async def call() -> None:
        result = await client.call_tool("route", ARGUMENTS)
        if result.is_error:
            raise SystemExit(f"route failed: {result.content}")

    return await _timed(call, n)


async def over_stdio(n: int, cwd: Path, errlog: TextIO, *, floor: bool = False) -> Run:
    command, args = (sys.executable, ["-c", FLOOR_SERVER]) if floor else (_command(), [])
    params = StdioServerParameters(command=command, args=args, env=_env(), cwd=str(cwd))
    async with Client(stdio_client(params, errlog=errlog)) as client:
        return await _route_times(client, n)


async def over_http(n: int, cwd: Path) -> Run:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        _command(), "--http", "--port", str(port),
        env=_env(GEARSHIFT_MCP_TOKEN=TOKEN), cwd=str(cwd), stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _wait_for(port)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            create_mcp_http_client(headers=headers) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
        ):
            return await _route_times(client, n)
    finally:
        process.terminate()
        await process.wait()


async def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise SystemExit(f"gearshift-mcp --http did not listen on port {port}")


async def in_process(n: int) -> Run:
    async with Client(build_server(None)) as client:
        return await _route_times(client, n)


async def bare_decision(n: int) -> Run:
    router = Router.from_config(None)
    request = ChatRequest(messages=(Message.user(ARGUMENTS["prompt"]),))
    context = StepContext(agent_id="bench", step_type=StepType.OBSERVE)
    return await _timed(lambda: router.adecide(request, context), n)


def _p(times: list[float], q: int) -> float:
    return round(statistics.quantiles(times, n=100, method="inclusive")[q - 1], 3)


async def measure(n: int, errlog: TextIO) -> dict[str, float | None]:
    """Route `n` times over each path: median and 99th percentile in ms, and CPU ms per call."""
    cwd = Path.cwd()
    if (cwd / "gearshift.toml").exists():
        raise SystemExit("run it from a folder without a gearshift.toml (it measures the built-in models)")
    result: dict[str, float | None] = {}
    for name, run in (
        ("stdio", await over_stdio(n, cwd, errlog)),
        ("http", await over_http(n, cwd)),
        ("inprocess", await in_process(n)),
        ("floor_stdio", await over_stdio(n, cwd, errlog, floor=True)),
    ):
        result[f"{name}_p50_ms"] = round(statistics.median(run.times), 3)
        result[f"{name}_p99_ms"] = _p(run.times, 99)
        if name == "inprocess":  # client and server share this process
            result["inprocess_cpu_ms"] = round(run.client_cpu_ms / n, 3)
        else:
            result[f"{name}_client_cpu_ms"] = round(run.client_cpu_ms / n, 3)
            server = run.server_cpu_ms
            result[f"{name}_server_cpu_ms"] = None if server is None else round(server / n, 3)
    result["decide_p50_ms"] = round(statistics.median((await bare_decision(n)).times), 3)
    result["load_avg_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    result["n"] = n
    return result


def main() -> None:
    """Run the benchmark; prints a summary (unless --json) and the JSON result last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="route calls per transport (default 500)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    with open(os.devnull, "w") as quiet:  # the server's notice that no API key is set
        result = asyncio.run(measure(args.n, quiet))
    if not args.json:
        for name in ("stdio", "http", "floor_stdio"):
            print(
                f"{name:>9}: p50 {result[f'{name}_p50_ms']} ms  p99 {result[f'{name}_p99_ms']} ms  "
                f"cpu/call: client {result[f'{name}_client_cpu_ms']} ms, "
                f"server {result[f'{name}_server_cpu_ms']} ms"
            )
        print(
            f"inprocess: p50 {result['inprocess_p50_ms']} ms  p99 {result['inprocess_p99_ms']} ms  "
            f"cpu/call {result['inprocess_cpu_ms']} ms (client and server in one process, no transport)"
        )
        print("(floor_stdio: a one-tool SDK server answering a constant: the MCP SDK's own cost)")
        print(f"   decide: p50 {result['decide_p50_ms']} ms (Router.adecide alone)")
        print(f"machine load (1 min average): {result['load_avg_1m']} on {os.cpu_count()} CPUs")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
