"""`RoutedLLM.achat` overhead: a LlamaIndex chat call routed by gearshift against the direct SDK call.

Every path hits the same local OpenAI-compatible server on 127.0.0.1 through the real `openai` SDK.
The routed paths add LlamaIndex's callback and instrumentation wrapper, the message conversion, the
step context read from the history, and the router (signals, policy, provider conversion, records).
`router.acomplete` is measured too, so the adapter's own share shows. Calls are interleaved so drift
in the server or machine load hits every path alike.

    uv run python tests/benchmarks/llamaindex_overhead.py [--n 300] [--json]

Prints a JSON object last: {"direct_p50_ms", "router_p50_ms", "achat_p50_ms",
"achat_escalation_offered_p50_ms", "achat_overhead_p50_ms", "adapter_p50_ms",
"achat_cpu_overhead_p50_ms", "adapter_cpu_p50_ms", "n"}. The `cpu` figures are medians of the process
CPU time each call took (the in-process server's share is the same on every path), which a busy
machine inflates far less than wall time.
`achat_overhead_p50_ms` (target < 1 ms) is achat without self-escalation, which sends the very request
the direct call sends; with self-escalation on (the default) the request also carries the `escalate`
tool, measured as `achat_escalation_offered_p50_ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

from _local_pair import PROMPT, local_router
from llama_index.core.base.llms.types import ChatMessage
from openai import AsyncOpenAI

from gearshift import ChatRequest, Message
from gearshift.testing import LocalOpenAIServer
from gearshift_llamaindex import RoutedLLM


async def measure(n: int) -> dict[str, float]:
    with LocalOpenAIServer(models=("small", "large")) as server:
        router = local_router(server)
        plain = RoutedLLM(router, agent_id="bench", run_id="bench-run", self_escalation=False)
        offering = RoutedLLM(router, agent_id="bench", run_id="bench-run")
        client = AsyncOpenAI(api_key="unused", base_url=server.base_url, max_retries=0)
        request = ChatRequest(messages=(Message.user(PROMPT),))
        messages = [ChatMessage(role="user", content=PROMPT)]

        async def direct() -> None:
            await client.chat.completions.create(
                model="small", messages=[{"role": "user", "content": PROMPT}]
            )

        async def routed() -> None:
            result = await router.acomplete(request)
            assert result.model_id == "small"

        async def achat() -> None:
            response = await plain.achat(messages)
            assert response.raw["model_id"] == "small"

        async def achat_offering() -> None:
            response = await offering.achat(messages)
            assert response.raw["model_id"] == "small"

        paths: dict[str, Callable[[], Awaitable[None]]] = {
            "direct": direct,
            "router": routed,
            "achat": achat,
            "achat_escalation_offered": achat_offering,
        }
        for _ in range(20):  # warm up connections, SDK imports and caches on every path
            for call in paths.values():
                await call()
        timings: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(n):
            for name, call in paths.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                await call()
                cpu[name].append((time.process_time() - cpu_started) * 1000)
                timings[name].append((time.perf_counter() - started) * 1000)
        await client.close()
        await router.aclose()
    p50 = {name: statistics.median(values) for name, values in timings.items()}
    cpu50 = {name: statistics.median(values) for name, values in cpu.items()}
    return {
        **{f"{name}_p50_ms": round(value, 3) for name, value in p50.items()},
        "achat_overhead_p50_ms": round(p50["achat"] - p50["direct"], 3),
        "adapter_p50_ms": round(p50["achat"] - p50["router"], 3),
        "achat_cpu_overhead_p50_ms": round(cpu50["achat"] - cpu50["direct"], 3),
        "adapter_cpu_p50_ms": round(cpu50["achat"] - cpu50["router"], 3),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.n))
    if not args.json:
        print(f"direct SDK call p50:          {figures['direct_p50_ms']} ms")
        print(f"router.acomplete p50:         {figures['router_p50_ms']} ms")
        print(f"RoutedLLM.achat p50:          {figures['achat_p50_ms']} ms")
        print(f"  with escalation offered:    {figures['achat_escalation_offered_p50_ms']} ms")
        print(f"achat overhead over direct:   {figures['achat_overhead_p50_ms']} ms (target < 1 ms)")
        print(f"adapter's share (achat-router): {figures['adapter_p50_ms']} ms")
        print(f"CPU time added over direct:   {figures['achat_cpu_overhead_p50_ms']} ms")
        print(f"  of which the adapter's:     {figures['adapter_cpu_p50_ms']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
