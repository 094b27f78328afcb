"""The classifier's added latency, and speculative routing's, on a scripted local run.

    uv run python tests/benchmarks/classifier_latency.py [--json] [--n 40] [--fast-ms 300] [--strong-ms 900]
                                                         [--judge-ms 0] [--stream]

One `LocalOpenAIServer` on 127.0.0.1 serves three models through the real `openai` SDK: `mini`
(tier 0, the fast model, answering after `--fast-ms`), `judge` (tier 0, the classifier, answering after
`--judge-ms` with a scripted label: tier 0 and tier 1 alternate) and `large` (tier 1, after `--strong-ms`).
Every request is a distinct prompt (no cache hits). Three routers answer the same `n` requests in turn:

- `default`: the default policy routes, then the chosen model is called (no classifier);
- `classifier`: the classifier is asked, then the tier it names is called (route, then call);
- `speculative`: the classifier and `mini` start together; `mini`'s answer is kept when the
  classifier picks tier 0, cancelled (and paid for) when it picks tier 1.

Reported per router: median and p90 wall time per request, and for the classifier routers the added
latency per tier (their median minus the default router's median for calls answered by the same
tier: what classifying costs in time), the share of spend on classification, and for speculative routing
the wasted spend (cancelled fast calls) as a share of all spend. With `--stream` every call is a
`Router.astream` and the times are to the first text chunk (a speculative stream holds the fast
model's chunks until the verdict, and closes that stream when the verdict is tier 1).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from gearshift import RoutedResponse, Router, TextDelta
from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift.learning import DefaultPolicy
from gearshift.policies import ClassifierConfig, ClassifierPolicy, Policy
from gearshift.providers._openai import OpenAIProvider
from gearshift.testing import Delay, LocalOpenAIServer, Reply


def _spec(model_id: str, tier: int, price_in: float, price_out: float) -> ModelSpec:
    prices = ModelPrices(input=price_in, output=price_out)
    return ModelSpec(id=model_id, provider="local", model=model_id, tier=tier, prices=prices)


REGISTRY = ModelRegistry(
    [_spec("mini", 0, 0.15, 0.60), _spec("judge", 0, 0.20, 0.80), _spec("large", 1, 2.50, 10.00)]
)


def _prompt(i: int) -> str:
    return (
        f"Request {i}: summarise in two sentences why the export job {i} drops rows when its queue is full."
    )


async def _call(router: Router, prompt: str, stream: bool) -> tuple[RoutedResponse, float]:
    """The answer, and the seconds to it (to its first text chunk when streamed)."""
    started = time.perf_counter()
    if not stream:
        answer = await router.acomplete(prompt)
        return answer, time.perf_counter() - started
    first = None
    routed = router.astream(prompt)
    async for event in routed:
        if first is None and isinstance(event, TextDelta):
            first = time.perf_counter() - started
    assert routed.result is not None and first is not None
    return routed.result, first


async def _run(
    server: LocalOpenAIServer,
    policy: Policy,
    n: int,
    fast_s: float,
    strong_s: float,
    judge_s: float,
    stream: bool = False,
) -> dict[str, Any]:
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=30.0)
    router = Router(REGISTRY, policy=policy, providers=[provider])
    times: list[float] = []
    by_tier: dict[int, list[float]] = {0: [], 1: []}
    spend = classify_spend = wasted = 0.0
    for i in range(n):
        tier = i % 2
        server.script("judge", Delay(judge_s, then=Reply(str(tier))))
        # Every answering call gets its scripted latency; a cancelled one consumes its Delay too.
        server.script("mini", Delay(fast_s))
        server.script("large", Delay(strong_s))
        answer, elapsed = await _call(router, _prompt(i), stream)
        times.append(elapsed)
        by_tier[REGISTRY[answer.model_id].tier].append(elapsed)
        spend += answer.cost_usd
        classify_spend += sum(a.cost_usd for a in answer.attempts if a.model_id == "judge")
        wasted += sum(a.cost_usd for a in answer.attempts if a.cancelled)
        # Leave no scripted action behind for the next request.
        for model in ("judge", "mini", "large"):
            while server.pending(model):
                server._scripts[model].popleft()
    await router.aclose()
    ordered = sorted(times)
    return {
        "median_ms": round(1000 * statistics.median(times), 1),
        "p90_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 1),
        "median_ms_by_tier": {t: round(1000 * statistics.median(v), 1) for t, v in by_tier.items() if v},
        "spend_usd": round(spend, 8),
        "classification_share": round(classify_spend / spend, 4) if spend else 0.0,
        "wasted_share": round(wasted / spend, 4) if spend else 0.0,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    fast_s, strong_s, judge_s = args.fast_ms / 1000, args.strong_ms / 1000, args.judge_ms / 1000
    results: dict[str, Any] = {}
    with LocalOpenAIServer(models=("mini", "judge", "large")) as server:
        timing = (args.n, fast_s, strong_s, judge_s, args.stream)
        results["default"] = await _run(server, DefaultPolicy(), *timing)
        for name, speculative in (("classifier", False), ("speculative", True)):
            config = ClassifierConfig(model="judge", cache_size=0, speculative=speculative)
            policy = ClassifierPolicy(config, fallback=DefaultPolicy(), tiers=REGISTRY.tiers)
            results[name] = await _run(server, policy, *timing)
    plain = results["default"]["median_ms_by_tier"]
    for name in ("classifier", "speculative"):
        tiers = results[name]["median_ms_by_tier"]
        # Added latency per tier: against the default router's calls answered by the same tier.
        results[name]["added_ms_by_tier"] = {
            t: round(ms - plain[t], 1) for t, ms in tiers.items() if t in plain
        }
    results["speculative"]["vs_classifier_median_ms"] = round(
        results["speculative"]["median_ms"] - results["classifier"]["median_ms"], 1
    )
    scripted = {"fast_ms": args.fast_ms, "strong_ms": args.strong_ms, "judge_ms": args.judge_ms}
    return {"n": args.n, "stream": args.stream, **scripted, "routers": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40, help="requests per router (half classified tier 1)")
    parser.add_argument("--fast-ms", type=float, default=300.0, help="scripted latency of the fast model")
    parser.add_argument("--strong-ms", type=float, default=900.0, help="scripted latency of the strong model")
    parser.add_argument(
        "--judge-ms",
        type=float,
        default=0.0,
        help="scripted latency of the classifier (default 0: local only)",
    )
    parser.add_argument("--stream", action="store_true", help="stream every call; time to the first chunk")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    figures = asyncio.run(_main(args))
    if not args.json:
        for name, result in figures["routers"].items():
            print(name, result)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
