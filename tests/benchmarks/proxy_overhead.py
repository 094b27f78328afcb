"""Proxy overhead: what `gearshift serve` adds over calling the model server directly, same client.

One `openai.AsyncOpenAI` configuration calls the local OpenAI-compatible server on 127.0.0.1 once
directly and once through a `gearshift serve` process routing to it, interleaved so drift in load
hits both sides alike. Reports added latency (p50, p99) for plain calls, added time to first token
for streamed calls, and throughput of the proxy with 1 and 2 worker processes: the highest request
rate of closed-loop clients at which p99 stays under 50 ms. The load generator, the proxy and the
model server share this machine's cores, so throughput is a floor, not a ceiling.

Other proxies already running (LiteLLM's, an older gearshift) join the same interleaved loop with
`--proxy NAME=URL` (their `model` with `--proxy-model`); they must route to the same model server,
so pass `--upstream URL` to use one already running instead of starting one in this process.
`--proxy-pid NAME=PID` adds that proxy's CPU time per call (this run's own proxy always has it).
Nothing here installs or starts another proxy.

    uv run python tests/benchmarks/proxy_overhead.py [--n 1000] [--seconds 3] [--json]
        [--upstream URL] [--proxy NAME=URL ...] [--proxy-pid NAME=PID ...] [--proxy-model auto]
        [--no-throughput]

Prints a JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from openai import AsyncOpenAI

from gearshift.testing import LocalOpenAIServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "serve"))
from proxy_support import ProxyProcess, write_config

PROMPT = "Summarise the main idea of the following paragraph in one sentence: routing saves money."
MESSAGES = [{"role": "user", "content": PROMPT}]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(call: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process `pid` has used, from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _latency(
    direct: AsyncOpenAI, proxies: dict[str, tuple[AsyncOpenAI, str]], n: int, pids: dict[str, int]
) -> dict[str, float]:
    """Added latency of each proxy over `direct`, calls interleaved: direct, then each proxy, n times;
    and the CPU time each proxy with a known process id spent per call, which load on the machine
    inflates far less than it does latency."""

    def plain(client: AsyncOpenAI, model: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            await client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]

        return call

    def first_token(client: AsyncOpenAI, model: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            await stream.close()

        return call

    figures: dict[str, float] = {}
    for name, make in (("plain", plain), ("ttft", first_token)):
        for _ in range(50):  # warm up connections and caches on every path
            await make(direct, "small")()
            for client, model in proxies.values():
                await make(client, model)()
        direct_ms: list[float] = []
        proxy_ms: dict[str, list[float]] = {label: [] for label in proxies}
        cpu_before = {label: _cpu_seconds(pid) for label, pid in pids.items()}
        for _ in range(n):
            direct_ms.append(await _timed(make(direct, "small")))
            for label, (client, model) in proxies.items():
                proxy_ms[label].append(await _timed(make(client, model)))
        for label, pid in pids.items():
            before, after = cpu_before[label], _cpu_seconds(pid)
            if before is not None and after is not None:
                tag = "" if label == "proxy" else f"{label}_"
                figures[f"{name}_{tag}proxy_cpu_ms"] = round((after - before) / n * 1000, 3)
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            figures[f"{name}_direct_{label}_ms"] = round(_quantile(direct_ms, q), 3)
        for proxy, times in proxy_ms.items():
            tag = "" if proxy == "proxy" else f"{proxy}_"
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                figures[f"{name}_{tag}proxy_{label}_ms"] = round(_quantile(times, q), 3)
                added = _quantile(times, q) - _quantile(direct_ms, q)
                figures[f"{name}_{tag}added_{label}_ms"] = round(added, 3)
            figures[f"{name}_{tag}added_mean_ms"] = round(
                statistics.fmean(times) - statistics.fmean(direct_ms), 3
            )
    return figures


async def _load(base_url: str, clients: int, seconds: float) -> tuple[float, float]:
    """Requests per second and p99 (ms) of `clients` closed-loop clients for `seconds`."""
    latencies: list[float] = []
    client = AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    call = lambda: client.chat.completions.create(model="auto", messages=MESSAGES)  # type: ignore[arg-type]  # noqa: E731
    for _ in range(clients):
        await call()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            latencies.append(await _timed(call))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await client.close()
    return len(latencies) / elapsed, _quantile(latencies, 0.99)


async def _throughput(config: Path, workers: int, seconds: float) -> dict[str, float]:
    best = {"rps": 0.0, "p99_ms": 0.0, "clients": 0}
    with ProxyProcess(config, "--workers", str(workers)) as proxy:
        await _load(proxy.base_url, 4, 2.0)  # every worker up, its SDK imported and connections open
        for clients in (1, 2, 4, 8, 16, 32):
            rps, p99 = await _load(proxy.base_url, clients, seconds)
            if p99 < 50 and rps > best["rps"]:
                best = {"rps": round(rps, 1), "p99_ms": round(p99, 2), "clients": clients}
    return best


async def measure(
    n: int,
    seconds: float,
    *,
    upstream: str | None,
    others: dict[str, str],
    other_pids: dict[str, int],
    other_model: str,
    throughput: bool,
) -> dict[str, object]:
    load_before = os.getloadavg()  # other work on the machine moves wall times far more than CPU
    with contextlib.ExitStack() as stack:
        if upstream is None:
            upstream = stack.enter_context(LocalOpenAIServer(models=("small", "large"))).base_url
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        config = write_config(Path(folder), upstream)
        config.write_text(config.read_text().replace(f'[log]\npath = "{Path(folder) / "decisions.db"}"', ""))
        with ProxyProcess(config) as proxy:
            clients = {"proxy": (AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0), "auto")}
            for name, url in others.items():
                clients[name] = (AsyncOpenAI(base_url=url, api_key="x", max_retries=0), other_model)
            direct = AsyncOpenAI(base_url=upstream, api_key="x", max_retries=0)
            pids = {"proxy": proxy.process.pid, **{k: v for k, v in other_pids.items() if k in others}}
            figures: dict[str, object] = dict(await _latency(direct, clients, n, pids))
            for client, _ in (*clients.values(), (direct, "")):
                await client.close()
        if throughput:
            for workers in (1, 2):
                figures[f"throughput_{workers}_worker"] = await _throughput(config, workers, seconds)
    figures["n"] = n
    figures["others"] = others
    figures["load_average"] = [round(x, 2) for x in load_before + os.getloadavg()]
    return figures


def _named_pid(text: str) -> tuple[str, int]:
    name, sep, pid = text.partition("=")
    if not sep or not name or not pid.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PID (e.g. litellm=12345), got {text!r}")
    return name, int(pid)


def _named_url(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith("http"):
        raise argparse.ArgumentTypeError(
            f"expected NAME=URL (e.g. litellm=http://127.0.0.1:4001/v1), got {text!r}"
        )
    return name, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="interleaved calls per path and kind")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput step")
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    parser.add_argument("--upstream", help="an OpenAI-compatible model server already running (its /v1 URL)")
    parser.add_argument(
        "--proxy", type=_named_url, action="append", default=[], help="NAME=URL of another running proxy"
    )
    parser.add_argument("--proxy-model", default="auto", help="the model name sent to the --proxy proxies")
    parser.add_argument(
        "--proxy-pid", type=_named_pid, action="append", default=[], help="NAME=PID: report its CPU per call"
    )
    parser.add_argument("--no-throughput", action="store_true", help="measure latency only")
    args = parser.parse_args()
    others = dict(args.proxy)
    if "proxy" in others:
        parser.error("--proxy: the name 'proxy' is this run's own gearshift serve; pick another")
    figures = asyncio.run(
        measure(
            args.n,
            args.seconds,
            upstream=args.upstream,
            others=others,
            other_pids=dict(args.proxy_pid),
            other_model=args.proxy_model,
            throughput=not args.no_throughput,
        )
    )
    if not args.json:
        for name in ("plain", "ttft"):
            for tag in ("", *(f"{other}_" for other in others)):
                p50, p99 = (figures[f"{name}_{tag}added_{q}_ms"] for q in ("p50", "p99"))
                direct, cpu = figures[f"{name}_direct_p50_ms"], figures.get(f"{name}_{tag}proxy_cpu_ms")
                print(
                    f"{name:5s} {tag or 'gearshift_'}added p50 {p50} ms, p99 {p99} ms (direct: {direct} ms)"
                    + (f", proxy CPU {cpu} ms per call" if cpu is not None else "")
                )
        if not args.no_throughput:
            for workers in (1, 2):
                print(f"throughput, {workers} worker(s): {figures[f'throughput_{workers}_worker']}")
        load = figures["load_average"]
        print(f"load average (1, 5, 15 min) before: {load[:3]}, after: {load[3:]}")  # type: ignore[index]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
