"""Overhead of `RoutedChatModel` over calling the chosen model's SDK directly, without LangChain.

Every path hits the same local OpenAI-compatible server on 127.0.0.1 through the real `openai` SDK,
and the router picks the same model (`small`) the direct calls name:

- `direct_sync`: the `openai` SDK's sync client, then `invoke`: `RoutedChatModel.invoke` (LangChain's
  callback machinery, the step context, routing, and gearshift's sync bridge to the async SDK client);
- `direct_async`: the SDK's async client, then `ainvoke`: `RoutedChatModel.ainvoke`, and `router`:
  `Router.acomplete` alone, which splits the async overhead into the router's and the adapter's.

These send the very request the direct calls send (`self_escalation=False`). `ainvoke_offered` is
`ainvoke` with the default `self_escalation=True`: the request then carries gearshift's `escalate`
tool, which the SDK serializes and the server reads, so it costs more on both sides of the wire.

Calls are interleaved so drift in the server or the machine's load hits every path alike. Each call
is timed twice: wall clock, and the process's CPU time. The server runs in this process too, but it
does the same work for every path, so a CPU-time difference is the work the path adds; on a busy
machine it is the steadier figure, since waiting for a core inflates wall-clock times only.

    uv run python tests/benchmarks/langchain_overhead.py [--n 300] [--json]

Prints a JSON object last: per path the wall-clock and CPU p50 in ms (`invoke_p50_ms`,
`invoke_cpu_p50_ms`, ...), the overheads `invoke_overhead_p50_ms` (invoke against direct_sync),
`ainvoke_overhead_p50_ms`, `ainvoke_offered_overhead_p50_ms` and `router_overhead_p50_ms` (against
direct_async), each also as `*_cpu_p50_ms`, and `n`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable

from _local_pair import PROMPT, local_router
from openai import AsyncOpenAI, OpenAI

from gearshift import ChatRequest, Message
from gearshift._bridge import run_sync
from gearshift.testing import LocalOpenAIServer
from gearshift_langchain import RoutedChatModel


def measure(n: int) -> dict[str, float]:
    with LocalOpenAIServer(models=("small", "large")) as server:
        router = local_router(server)
        model = RoutedChatModel(router=router, self_escalation=False)
        offering = RoutedChatModel(router=router)
        sync_client = OpenAI(api_key="unused", base_url=server.base_url, max_retries=0)
        async_client = AsyncOpenAI(api_key="unused", base_url=server.base_url, max_retries=0)
        loop = asyncio.new_event_loop()
        request = ChatRequest(messages=(Message.user(PROMPT),))
        messages = [{"role": "user", "content": PROMPT}]

        def direct_sync() -> None:
            sync_client.chat.completions.create(model="small", messages=messages)  # type: ignore[arg-type]

        def invoke() -> None:
            assert model.invoke(PROMPT).response_metadata["gearshift"]["model_id"] == "small"

        def direct_async() -> None:
            loop.run_until_complete(async_client.chat.completions.create(model="small", messages=messages))  # type: ignore[arg-type]

        def ainvoke() -> None:
            answer = loop.run_until_complete(model.ainvoke(PROMPT))
            assert answer.response_metadata["gearshift"]["model_id"] == "small"

        def ainvoke_offered() -> None:
            answer = loop.run_until_complete(offering.ainvoke(PROMPT))
            assert answer.response_metadata["gearshift"]["model_id"] == "small"

        def routed() -> None:
            assert loop.run_until_complete(router.acomplete(request)).model_id == "small"

        paths: dict[str, Callable[[], None]] = {
            "direct_sync": direct_sync,
            "invoke": invoke,
            "direct_async": direct_async,
            "ainvoke": ainvoke,
            "ainvoke_offered": ainvoke_offered,
            "router": routed,
        }
        for _ in range(20):  # warm up connections, SDK imports and caches on every path
            for call in paths.values():
                call()
        times: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(n):
            for name, call in paths.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                call()
                times[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - cpu_started) * 1000)
        loop.run_until_complete(async_client.close())
        loop.run_until_complete(router.aclose())
        loop.close()
        run_sync(router.aclose())
        sync_client.close()
    figures: dict[str, float] = {}
    for kind, samples in (("", times), ("_cpu", cpu)):
        p50 = {name: statistics.median(values) for name, values in samples.items()}
        figures.update({f"{name}{kind}_p50_ms": round(value, 3) for name, value in p50.items()})
        figures[f"invoke_overhead{kind}_p50_ms"] = round(p50["invoke"] - p50["direct_sync"], 3)
        figures[f"ainvoke_overhead{kind}_p50_ms"] = round(p50["ainvoke"] - p50["direct_async"], 3)
        figures[f"router_overhead{kind}_p50_ms"] = round(p50["router"] - p50["direct_async"], 3)
        figures[f"ainvoke_offered_overhead{kind}_p50_ms"] = round(
            p50["ainvoke_offered"] - p50["direct_async"], 3
        )
    figures["n"] = n
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = measure(args.n)
    if not args.json:
        print(f"{'p50 (ms)':>13}  wall    cpu")
        for name in ("direct_sync", "invoke", "direct_async", "ainvoke", "ainvoke_offered", "router"):
            print(f"{name:>13}  {figures[f'{name}_p50_ms']:<7} {figures[f'{name}_cpu_p50_ms']}")
        for label, key in (
            ("invoke over the sync SDK (target < 1 ms)", "invoke_overhead"),
            ("ainvoke over the async SDK", "ainvoke_overhead"),
            ("router.acomplete over the async SDK", "router_overhead"),
            ("ainvoke offering escalation over the async SDK", "ainvoke_offered_overhead"),
        ):
            print(f"{label}: {figures[f'{key}_p50_ms']} ms wall, {figures[f'{key}_cpu_p50_ms']} ms cpu")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
