"""Router overhead: a routed call against the same call made with the SDK directly.

Both paths hit the same local OpenAI-compatible server on 127.0.0.1 through the real `openai` SDK;
the difference is what gearshift adds (signals, policy, eligibility, provider conversion, attempt
records). Calls are interleaved so drift in the server or machine load hits both sides alike.

    uv run python tests/benchmarks/router_overhead.py [--n 300] [--json]

Prints a JSON object last: {"direct_p50_ms", "routed_p50_ms", "overhead_p50_ms", "n"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from _local_pair import PROMPT, local_router
from openai import AsyncOpenAI

from gearshift import ChatRequest, Message
from gearshift.testing import LocalOpenAIServer


async def measure(n: int) -> dict[str, float]:
    with LocalOpenAIServer(models=("small", "large")) as server:
        router = local_router(server)
        client = AsyncOpenAI(api_key="unused", base_url=server.base_url, max_retries=0)
        request = ChatRequest(messages=(Message.user(PROMPT),))

        async def direct() -> None:
            await client.chat.completions.create(
                model="small", messages=[{"role": "user", "content": PROMPT}]
            )

        async def routed() -> None:
            result = await router.acomplete(request)
            assert result.model_id == "small"

        for _ in range(20):  # warm up connections, SDK imports and caches on both paths
            await direct()
            await routed()
        direct_ms: list[float] = []
        routed_ms: list[float] = []
        for _ in range(n):
            for call, sink in ((direct, direct_ms), (routed, routed_ms)):
                started = time.perf_counter()
                await call()
                sink.append((time.perf_counter() - started) * 1000)
        await client.close()
    direct_p50 = statistics.median(direct_ms)
    routed_p50 = statistics.median(routed_ms)
    return {
        "direct_p50_ms": round(direct_p50, 3),
        "routed_p50_ms": round(routed_p50, 3),
        "overhead_p50_ms": round(routed_p50 - direct_p50, 3),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.n))
    if not args.json:
        print(f"direct SDK call p50: {figures['direct_p50_ms']} ms")
        print(f"routed call p50:     {figures['routed_p50_ms']} ms")
        print(f"router overhead:     {figures['overhead_p50_ms']} ms (target < 1 ms)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
