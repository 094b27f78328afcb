"""Parallel calls near the end of a hard limit: how many are served, how long, and how many refused.

N concurrent `Router.acomplete` calls without `max_tokens`, against a local OpenAI-compatible server
whose model answers in a few words after `--latency` seconds, under a hard dollar limit that their
real cost fits K times (`--fits`). Each call must reserve its worst case (its output cap, the
configured 512 tokens lowered to what the budget affords, never below the 64 of a useful answer),
which is far above its real cost: the figures say how many of the K calls that would fit by real cost
were served, and how many refused.

    uv run python tests/benchmarks/budget_near_limit.py [--calls 16] [--fits 8] [--latency 0.3]
        [--store memory|sqlite|redis] [--wait 30] [--repeat 3] [--json]

`--wait` is the ledger's `wait_seconds` (0: a call held off by others' reservations is refused at
once, as before gearshift waited). Prints one line per run, then one JSON object last (medians over
`--repeat` runs): {"calls", "fits", "fits_bounded", "served", "refused", "refused_that_fit", "seconds",
"spent_usd", "limit_usd", "overspend_usd"}. `refused_that_fit` is min(refused, fits - served):
refusals of calls the limit paid for by real cost. `fits_bounded` is the most calls any scheme that
never risks passing the limit could serve: one after another, each starting only while the spend so
far plus a useful answer's worst case (64 output tokens) fits. Exits 1 when the limit was passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from _verbose_attack import store_opener  # the benchmark's own folder is on sys.path when run

from gearshift import (
    BudgetExceeded,
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    StepContext,
    Usage,
)
from gearshift.budgets import BudgetLedger, BudgetLimit
from gearshift.budgets._spend_index import to_nano
from gearshift.providers import OpenAIProvider
from gearshift.routing._budget_fit import USEFUL_OUTPUT_TOKENS
from gearshift.testing import Delay, LocalOpenAIServer, Reply

PROMPT = "What is the capital of France?"
ANSWER = Reply(text="The capital of France is Paris, a city on the Seine.")
REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=1.0, output=4.0)
        )
    ]
)


async def one_run(kind: str, calls: int, fits: int, latency: float, wait: float) -> dict[str, Any]:
    with LocalOpenAIServer(models=("small",)) as server, store_opener(kind) as open_store:
        provider = OpenAIProvider(name="local", api_key="sk-bench", base_url=server.base_url, timeout=30.0)
        # What one call really costs, measured with no limit at all.
        server.script("small", ANSWER)
        probe = Router(REGISTRY, policy=SignalScorer(), providers=[provider])
        probed = await probe.acomplete(PROMPT)
        one = probed.cost_usd
        limit = one * fits + one / 2  # K calls fit by real cost, K + 1 do not
        useful = REGISTRY["small"].cost(Usage(probed.usage.input_tokens, USEFUL_OUTPUT_TOKENS))
        bounded = int((limit - useful) // one) + 1 if limit >= useful else 0
        limits = [BudgetLimit(name="cap", key="agent:*", usd=limit)]
        ledger = BudgetLedger(open_store(), limits, wait_seconds=wait)
        router = Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger)
        server.script("small", *[Delay(latency, ANSWER)] * calls)

        async def call() -> bool:
            try:
                await router.acomplete(
                    ChatRequest(messages=(Message.user(PROMPT),)), StepContext(agent_id="a")
                )
            except BudgetExceeded:
                return False
            return True

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(call() for _ in range(calls)))
        seconds = time.perf_counter() - started
        (usage,) = await ledger.usage(["agent:a"])
        await ledger.aclose()
        await provider.aclose()
    served = sum(outcomes)
    refused = calls - served
    return {
        "calls": calls,
        "fits": fits,
        "fits_bounded": min(bounded, calls),
        "served": served,
        "refused": refused,
        "refused_that_fit": max(0, min(refused, fits - served)),
        "seconds": round(seconds, 3),
        "spent_usd": usage.spent_usd,
        "limit_usd": limit,
        "overspend_usd": max(0.0, usage.spent_usd - limit)
        if to_nano(usage.spent_usd) > to_nano(limit)
        else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--store", choices=("memory", "sqlite", "redis"), default="memory")
    parser.add_argument("--wait", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        run = asyncio.run(one_run(args.store, args.calls, args.fits, args.latency, args.wait))
        runs.append(run)
        if not args.json:
            print(
                f"{run['served']}/{run['calls']} served ({run['fits']} fit by real cost, "
                f"{run['fits_bounded']} without risking the limit), "
                f"{run['refused_that_fit']} refused that fit, {run['seconds']:.2f} s, "
                f"spent ${run['spent_usd']:.9f} of ${run['limit_usd']:.9f}"
            )
    figures = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    figures["overspend_usd"] = max(run["overspend_usd"] for run in runs)
    figures["store"] = args.store
    print(json.dumps(figures))
    return 1 if figures["overspend_usd"] > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
