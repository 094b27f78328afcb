"""CPU per Anthropic call: what `AnthropicProvider.stream` (or, with `--plain`, `complete`) costs the
caller's event loop.

The provider streams from the local Anthropic server on 127.0.0.1 (its threads run in this process,
so the figure is the CPU time of the event loop's own thread, `time.thread_time`, which leaves the
server's work out). Each call is timed on its own after a warm-up; the p50 and mean of the per-call
CPU, and the time to first token, are reported. To compare two versions of gearshift on the same
machine, run this once per version, alternating, with `PYTHONPATH` pointing at the other version's
`packages/core/src` (the figures say which `gearshift` they measured).

    uv run python tests/benchmarks/anthropic_stream_cpu.py [--n 500] [--words 0] [--plain]
        [--http-client httpx|aiohttp] [--json]

`--words W` has every answer be W words (each its own event); 0 keeps the simulated default answer
(about 20 events). `--http-client` is the provider's setting (it moves plain calls only). Prints a
JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import gearshift
from gearshift._messages import ChatRequest, Message, TextDelta
from gearshift._models import ModelPrices, ModelSpec
from gearshift.providers import AnthropicProvider
from gearshift.testing import LocalAnthropicServer, Reply

KEY = "sk-ant-bench"
MODEL = ModelSpec(
    id="claude", provider="anthropic", model="claude", tier=1, prices=ModelPrices(input=3, output=15)
)
REQUEST = ChatRequest(messages=(Message.user("Summarise the main idea of routing in one sentence."),))


async def _one(provider: AnthropicProvider, plain: bool) -> tuple[float, float]:
    """CPU seconds of this thread for one call, and seconds to its first text (to its answer, plain)."""
    cpu, started = time.thread_time(), time.perf_counter()
    first: float | None = None
    if plain:
        await provider.complete(MODEL, REQUEST)
        first = time.perf_counter() - started
    else:
        async for event in provider.stream(MODEL, REQUEST):
            if first is None and isinstance(event, TextDelta):
                first = time.perf_counter() - started
    return time.thread_time() - cpu, first or 0.0


async def _measure(n: int, warmup: int, words: int, plain: bool, http_client: str) -> dict[str, float]:
    with LocalAnthropicServer(models=(MODEL.model,), api_key=KEY) as server:
        if words:
            text = " ".join(f"word{i}" for i in range(words))
            server.script(MODEL.model, *(Reply(text) for _ in range(n + warmup)))
        provider = AnthropicProvider(api_key=KEY, base_url=server.base_url, http_client=http_client)  # type: ignore[arg-type]
        try:
            for _ in range(warmup):
                await _one(provider, plain)
            runs = [await _one(provider, plain) for _ in range(n)]
        finally:
            await provider.aclose()
    cpu = [c * 1e6 for c, _ in runs]
    first = [f * 1e3 for _, f in runs]
    return {
        "cpu_us_p50": round(statistics.median(cpu), 1),
        "cpu_us_mean": round(statistics.fmean(cpu), 1),
        "first_token_ms_p50": round(statistics.median(first), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=500, help="measured streamed calls")
    parser.add_argument("--warmup", type=int, default=50, help="calls before measuring")
    parser.add_argument("--words", type=int, default=0, help="words per answer (0: the default answer)")
    parser.add_argument("--plain", action="store_true", help="plain calls instead of streams")
    parser.add_argument("--http-client", choices=("httpx", "aiohttp"), default="httpx")
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = asyncio.run(_measure(args.n, args.warmup, args.words, args.plain, args.http_client))
    result = {
        "gearshift": os.path.dirname(gearshift.__file__),
        "call": "plain" if args.plain else "stream",
        "http_client": args.http_client,
        "n": args.n,
        "words": args.words,
        **figures,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if not args.json:
        print(f"gearshift from {result['gearshift']}, {args.n} {result['call']} calls on {args.http_client}")
        print(f"CPU per call: p50 {figures['cpu_us_p50']} us, mean {figures['cpu_us_mean']} us")
        print(f"time to first token (plain: to the answer): p50 {figures['first_token_ms_p50']} ms")
        print(f"load average (1 min): {result['load_average_1m']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
