"""Deployments under mixed traffic and outages, against two local servers (the real `openai` SDK on
127.0.0.1): what a caller sees, in two scripted runs.

- `first_token_ms`: deployment `east` has served two long unstreamed answers (0.3 s each, its first
  token at once) and `west` streams with its first token after 0.1 s; then 24 streams are routed. The
  median time to first token the caller saw over the last 20 (each deployment measured by then), and
  how many streams each deployment served. A latency average that mixes the two kinds of call ranks
  east at 300 ms against west's 100 and sends every stream to west.
- `early_calls`: both deployments tripped and due a probe, east's probe answering after 0.5 s; ten
  parallel callers. How many got their answer from a real call before east's probe could answer
  (a half-open breaker lets only the probe through: 0).

    uv run python tests/benchmarks/deployment_latency.py [--runs 5] [--json]

Prints a JSON object last: {"first_token_ms": [per run], "median_first_token_ms", "served": [per run],
"early_calls": [per run], "runs"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time

from gearshift import (
    AllModelsFailed,
    Deployment,
    DeploymentHealth,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
)
from gearshift.providers import OpenAIProvider
from gearshift.testing import Delay, Fail, LocalOpenAIServer


def _router(east: LocalOpenAIServer, west: LocalOpenAIServer, jump: list[float]) -> Router:
    """One model on east and west, tripped by one failure for 5 s; the clock runs `jump[0]` s ahead."""
    spec = ModelSpec(
        id="small",
        provider="east",
        model="small",
        tier=1,
        prices=ModelPrices(input=1, output=2),
        deployments=[Deployment(provider="west", model="small-west")],
    )
    return Router(
        ModelRegistry([spec]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider(name, base_url=server.base_url, require_key=False, timeout=10.0)
            for name, server in (("east", east), ("west", west))
        ],
        deployments=DeploymentHealth(failures=1, open_seconds=5.0),
        clock=lambda: time.monotonic() + jump[0],
    )


async def _first_token() -> tuple[float, dict[str, int]]:
    with LocalOpenAIServer(models=("small",)) as east, LocalOpenAIServer(models=("small-west",)) as west:
        east.script("small", Delay(0.3), Delay(0.3))
        west.script("small-west", *[Delay(0.1)] * 40)
        async with _router(east, west, [0.0]) as router:
            for n in range(2):
                await router.acomplete(f"a long answer {n}")
            seen: list[float] = []
            served: dict[str, int] = {}
            for n in range(24):
                started = time.monotonic()
                stream = router.astream(f"stream {n}")
                first: float | None = None
                async for _ in stream:
                    first = time.monotonic() - started if first is None else first
                assert stream.result is not None and first is not None
                provider = stream.result.attempts[-1].provider
                served[provider] = served.get(provider, 0) + 1
                if n >= 4:  # each deployment warmed up and measured
                    seen.append(first * 1000)
    return statistics.median(seen), served


async def _early_calls() -> int:
    with LocalOpenAIServer(models=("small",)) as east, LocalOpenAIServer(models=("small-west",)) as west:
        east.script("small", Fail(503), Delay(0.5))
        west.script("small-west", Fail(503))
        jump = [0.0]
        async with _router(east, west, jump) as router:
            with contextlib.suppress(AllModelsFailed):  # both fail: each is tripped
                await router.acomplete("trip both")
            jump[0] += 6.0
            started = time.monotonic()

            async def call(n: int) -> float:
                await router.acomplete(f"call {n}")
                return time.monotonic() - started

            ended = await asyncio.gather(*(call(n) for n in range(10)))
    return sum(1 for seconds in ended if seconds < 0.45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    first = [asyncio.run(_first_token()) for _ in range(args.runs)]
    early = [asyncio.run(_early_calls()) for _ in range(args.runs)]
    figures = {
        "first_token_ms": [round(ms, 1) for ms, _ in first],
        "median_first_token_ms": round(statistics.median(ms for ms, _ in first), 1),
        "served": [served for _, served in first],
        "early_calls": early,
        "runs": args.runs,
    }
    if not args.json:
        print(f"median time to first token after mixed traffic: {figures['median_first_token_ms']} ms")
        print(f"calls answered before the probe could answer, per run: {early}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
