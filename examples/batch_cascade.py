"""A batched cascade: the cheap model answers a whole batch, only rejected answers go to the strong one.

    uv run python examples/batch_cascade.py

Offline (no key set) it starts gearshift's local OpenAI-compatible server on 127.0.0.1 twice: two
deployments of the cheap model, one of which fails with HTTP 503, so you can watch calls move to the
healthy deployment; a few of the cheap model's answers are refusals, which the heuristic gate rejects
and the strong model answers again. With OPENAI_API_KEY or ANTHROPIC_API_KEY set it runs the same
batch over the built-in ladder of real models.
"""

from __future__ import annotations

import asyncio
import os

from gearshift import (
    BatchResult,
    Deployment,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    summarize_batch,
)
from gearshift.providers import OpenAIProvider
from gearshift.testing import Fail, LocalOpenAIServer, Reply

PROMPTS = [
    "What is the capital of France?",
    "Name a prime number above 100.",
    "Translate 'good morning' into Spanish.",
    "What is 17 * 23?",
    "Give a synonym for 'rapid'.",
    "Which planet is closest to the sun?",
]
REFUSAL = "I'm sorry, but I can't help with that."


def show(results: list[BatchResult], registry: ModelRegistry) -> None:
    for result in results:
        where = (
            f"{result.response.model_id} via {result.response.attempts[-1].provider}"
            if result.response
            else "-"
        )
        verdict = "final" if result.accepted else f"rejected: {result.reason}"
        failed = [a.provider for a in result.response.attempts if not a.ok] if result.response else []
        if failed:
            verdict += f" (after a failure on {', '.join(failed)})"
        print(f"  item {result.id:>2} {result.stage:<6} {where:<22} ${result.cost_usd:.6f}  {verdict}")
    summary = summarize_batch(results, registry)
    print(
        f"escalated {summary.escalated} of {summary.answered} ({summary.escalation_rate:.0%}); "
        f"cost ${summary.cost_usd:.6f} against ${summary.strongest_cost_usd:.6f} always-strongest "
        f"({summary.savings:.0%} saved)"
    )


async def offline() -> None:
    with (
        LocalOpenAIServer(models=("small", "large")) as east,
        LocalOpenAIServer(models=("small",)) as west,
    ):
        registry = ModelRegistry(
            [
                ModelSpec(
                    id="small",
                    provider="east",
                    model="small",
                    tier=1,
                    prices=ModelPrices(input=0.15, output=0.6),
                    deployments=(Deployment(provider="west"),),
                ),
                ModelSpec(
                    id="large",
                    provider="east",
                    model="large",
                    tier=2,
                    prices=ModelPrices(input=2.5, output=10.0),
                ),
            ]
        )
        providers = [
            OpenAIProvider("east", base_url=east.base_url, require_key=False),
            OpenAIProvider("west", base_url=west.base_url, require_key=False),
        ]
        east.script("small", Fail(503), Fail(503))  # the east deployment is down
        west.script("small", Reply("Paris."), Reply(REFUSAL), Reply("¡Buenos días!"), Reply(REFUSAL))
        async with Router(registry, policy=SignalScorer(), providers=providers) as router:
            results = await router.abatch(PROMPTS, concurrency=1, cascade=True)
        show(results, registry)


async def live() -> None:
    async with Router.from_config() as router:
        results = await router.abatch(PROMPTS, concurrency=4, cascade=True)
        show(results, router.registry)


if __name__ == "__main__":
    keyed = os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    asyncio.run(live() if keyed else offline())
