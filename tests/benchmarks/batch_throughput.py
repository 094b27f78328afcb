"""Batch throughput: `Router.abatch` with the batched cascade, against a local server.

Two runs per concurrency level, on a two-tier router in front of one local OpenAI-compatible server
(the real `openai` SDK on 127.0.0.1):

- `instant`: the server answers at once and one cheap answer in five is a refusal the heuristic gate
  rejects, so a fifth of the items go on to the strong model: this measures what gearshift itself
  costs per item (routing, gate, records) with the whole cascade running.
- `slow`: every call waits `--latency-ms` on the server, as a real provider does, and none is
  rejected: this shows how the concurrency limit turns provider latency into throughput.

    uv run python tests/benchmarks/batch_throughput.py [--n 400] [--latency-ms 50] [--json]

Prints a JSON object last: {"instant": {concurrency: items_per_s}, "slow": {...}, "escalation_rate",
"n", "latency_ms"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _local_pair import local_router

from gearshift.testing import Delay, LocalOpenAIServer, Reply

REFUSAL = "I'm sorry, but I can't help with that."
LEVELS = (1, 8, 32)


async def _run(n: int, concurrency: int, latency_ms: float) -> tuple[float, float]:
    """(items per second, escalation rate) of one batch of `n` items."""
    with LocalOpenAIServer(models=("small", "large")) as server:
        prompts = [f"Summarise item {i} of the report in one line." for i in range(n)]
        async with local_router(server) as router:
            await router.abatch(prompts[:8], concurrency=8)  # warm up the SDK client and connections
            if latency_ms:
                server.script("small", *[Delay(latency_ms / 1000)] * n)
            else:
                server.script("small", *[Reply(REFUSAL) if i % 5 == 0 else Reply("Done.") for i in range(n)])
            started = time.perf_counter()
            results = await router.abatch(prompts, concurrency=concurrency, cascade=True)
            elapsed = time.perf_counter() - started
    strong = sum(1 for r in results if r.stage == "strong")
    return n / elapsed, strong / n


async def measure(n: int, latency_ms: float) -> dict[str, object]:
    instant: dict[str, float] = {}
    slow: dict[str, float] = {}
    escalation = 0.0
    for level in LEVELS:
        rate, escalation = await _run(n, level, 0.0)
        instant[str(level)] = round(rate, 1)
        slow[str(level)] = round((await _run(min(n, 200), level, latency_ms))[0], 1)
    return {"instant": instant, "slow": slow, "escalation_rate": escalation, "n": n, "latency_ms": latency_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.n, args.latency_ms))
    if not args.json:
        print(f"batched cascade, {args.n} items, escalation rate {figures['escalation_rate']:.0%}")
        for level in LEVELS:
            instant = figures["instant"][str(level)]  # type: ignore[index]
            slow = figures["slow"][str(level)]  # type: ignore[index]
            print(
                f"  concurrency {level:>2}: {instant:>7} items/s instant server, "
                f"{slow:>6} items/s at {args.latency_ms:g} ms a call"
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
