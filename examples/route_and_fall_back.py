"""Route prompts by difficulty and step, and fall back when a provider fails.

    uv run python examples/route_and_fall_back.py

Offline (no key set) it starts gearshift's local OpenAI-compatible server on 127.0.0.1 with a small
and a large simulated model, and makes the small one answer its first call with HTTP 429, so you can
watch the router fall back and cool the model down. With OPENAI_API_KEY or ANTHROPIC_API_KEY set it
routes the same prompts over the built-in ladder of real OpenAI and Anthropic models.
"""

from __future__ import annotations

import asyncio
import os
import time

from gearshift import (
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    StepContext,
    StepType,
    ToolRecord,
)
from gearshift.providers import OpenAIProvider
from gearshift.testing import Fail, LocalOpenAIServer

PROMPTS = [
    ("What is the capital of France?", StepContext()),
    (
        "Prove that the sum of the first n odd numbers is n^2, then analyze why the same induction "
        "fails for the sum of the first n even numbers. Explain step by step.",
        StepContext(step_type=StepType.PLAN),
    ),
    (
        "Search again for the quarterly report.",
        StepContext(
            step_type=StepType.ACT,
            tool_history=(ToolRecord("search", ok=False), ToolRecord("search", ok=False)),
        ),
    ),
]


async def route_all(router: Router) -> None:
    for prompt, context in PROMPTS:
        result = await router.acomplete(prompt, context)
        print(f"\n> {prompt[:70]}")
        print(f"  decided: {result.decision.model} (tier {result.decision.tier})")
        for reason in result.decision.reasons:
            print(f"    - {reason}")
        for attempt in result.attempts:
            outcome = "ok" if attempt.ok else f"failed ({attempt.error.kind if attempt.error else '?'})"
            print(f"  attempt: {attempt.model_id} {outcome}, ${attempt.cost_usd:.6f}")
        print(f"  answer from {result.model_id}: {result.response.text[:80]!r}")


def offline() -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        registry = ModelRegistry(
            [
                ModelSpec(
                    id="small",
                    provider="local",
                    model="small",
                    tier=1,
                    prices=ModelPrices(input=0.15, output=0.6),
                ),
                ModelSpec(
                    id="large",
                    provider="local",
                    model="large",
                    tier=2,
                    prices=ModelPrices(input=2.5, output=10.0),
                ),
            ]
        )
        router = Router(
            registry,
            policy=SignalScorer(),
            providers=[OpenAIProvider("local", base_url=server.base_url, require_key=False)],
        )
        server.script("small", Fail(status=429, retry_after=30.0))  # the first call to small is refused
        asyncio.run(route_all(router))
        left = router.cooldowns.cooling("small", time.monotonic())
        print(f"\nsmall is cooling down for {left:.0f} more s")


def live() -> None:
    with Router.from_config() as router:
        asyncio.run(route_all(router))


if __name__ == "__main__":
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY"):
        live()
    else:
        offline()
