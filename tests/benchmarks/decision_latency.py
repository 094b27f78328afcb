"""How long one routing decision takes: `gearshift._routing.decide` with the default policy or the scorer.

    uv run python tests/benchmarks/decision_latency.py [--json] [--n 1000] [--seed 7] [--cpu-time]
                                                       [--policy default|scorer]

Builds a registry of four models in three tiers (explicit prices, no network) and `n` mixed requests,
generated deterministically from the seed: short chat, code, math, reasoning, long documents, and
agent histories with tools, tool calls, tool errors and repeated calls. Every request is decided once
untimed (warm-up), then once more timed with `time.perf_counter_ns` (wall time), or with
`time.thread_time_ns` under `--cpu-time`, which leaves out the time other processes took the CPU on a
shared machine. The last line printed is a JSON object: {"p50_us": ..., "p99_us": ..., "n": ...} plus
the clock, mean, max and the median per kind of request.
Targets: p50 under 100 microseconds (scorer) or 200 microseconds (default: the learned difficulty
hashes the prompt's n-grams), p99 under 1 millisecond.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from gearshift._context import StepContext, StepType, ToolRecord, hash_arguments
from gearshift._messages import ChatRequest, Message, ToolCall, ToolSpec
from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift._routing import decide
from gearshift.learning import DefaultPolicy
from gearshift.policies import Policy, SignalScorer

_WORDS = tuple(
    " ".join(
        (
            "the system request model budget agent answer quality cheap strong latency token user data",
            "report",
            "market growth policy customer team project design review plan result value change process",
            "support service order price time people water energy city history science music travel health",
        )
    ).split()
)
_TOPICS = ("databases", "caching", "message queues", "unit testing", "type systems", "observability")
_LANGUAGES = ("Python", "TypeScript", "Go", "Rust", "Java")


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark request and the step it belongs to."""

    kind: str
    request: ChatRequest
    context: StepContext


def registry() -> ModelRegistry:
    """Four models in three tiers, with list prices written out (no genai-prices lookup)."""

    def spec(model_id: str, tier: int, price_in: float, price_out: float, window: int) -> ModelSpec:
        return ModelSpec(
            id=model_id,
            provider="openai",
            model=model_id,
            tier=tier,
            prices=ModelPrices(input=price_in, output=price_out),
            context_window=window,
            supports_vision=tier > 0,
        )

    return ModelRegistry(
        [
            spec("mini", 0, 0.15, 0.60, 128_000),
            spec("mid", 1, 2.50, 10.00, 128_000),
            spec("mid-alt", 1, 3.00, 15.00, 200_000),
            spec("large", 2, 15.00, 75.00, 200_000),
        ]
    )


def _prose(rng: random.Random, words: int) -> str:
    sentences = []
    while words > 0:
        length = min(words, rng.randint(8, 20))
        words -= length
        sentence = " ".join(rng.choice(_WORDS) for _ in range(length))
        if rng.random() < 0.2:
            sentence += f" ({rng.randint(2, 99)} percent)"
        sentences.append(sentence.capitalize() + ".")
    return " ".join(sentences)


def _chat(rng: random.Random) -> Case:
    prompt = rng.choice(
        (
            "hi there!",
            "Thanks, that helps a lot.",
            "What's a good name for a golden retriever puppy?",
            f"Can you recommend a book about {rng.choice(_WORDS)}?",
            f"What is the capital of {rng.choice(('France', 'Kenya', 'Peru', 'Japan'))}?",
            f"Give me a quick tip about {rng.choice(_WORDS)} {rng.choice(_WORDS)}.",
        )
    )
    history: tuple[Message, ...] = ()
    if rng.random() < 0.4:
        history = (Message.user(_prose(rng, 15)), Message.assistant(_prose(rng, 40)))
    messages = (Message.system("You are a helpful assistant."), *history, Message.user(prompt))
    return Case("chat", ChatRequest(messages=messages), StepContext())


def _code(rng: random.Random) -> Case:
    name = rng.choice(("parse_rows", "merge_intervals", "fetch_page", "retry_call"))
    body = "\n".join(
        f"    value_{i} = items[{i}] * {rng.randint(2, 9)} if items else None"
        for i in range(rng.randint(3, 25))
    )
    snippet = f"```python\ndef {name}(items):\n{body}\n    return value_0\n```"
    ask = rng.choice(
        (
            f"Write a {rng.choice(_LANGUAGES)} function that deduplicates a list while keeping order.",
            f'Why does this raise?\n{snippet}\nTraceback (most recent call last):\n  File "app.py", '
            f"line 3, in {name}\nTypeError: unsupported operand type(s)",
            f"Refactor this for readability and explain the trade-offs:\n{snippet}",
            f"Review this diff:\ndiff --git a/app.py b/app.py\n@@ -1,3 +1,4 @@\n+import os\n{snippet}",
        )
    )
    return Case("code", ChatRequest(messages=(Message.user(ask),)), StepContext())


def _math(rng: random.Random) -> Case:
    a, b, c = rng.randint(2, 90), rng.randint(2, 90), rng.randint(2, 9)
    ask = rng.choice(
        (
            f"A shop sells {a} apples on Monday and {b} on Tuesday at ${c} each. How much money did it make?",
            f"Solve for x: {c}x + {a} = {b}.",
            f"Compute $\\int_0^{c} x^2 \\, dx$ and show the steps.",
            f"What is {a} * {b} + {c}?",
            f"Prove that the sum of the first {a} odd numbers is a perfect square.",
        )
    )
    return Case("math", ChatRequest(messages=(Message.user(ask),)), StepContext())


def _reasoning(rng: random.Random) -> Case:
    first, second = rng.sample(_TOPICS, 2)
    ask = (
        f"Compare {first} and {second} for a team of {rng.randint(3, 40)} engineers. "
        "What are the trade-offs? Which would you recommend, and why? "
        "Consider cost, risk and the constraints below:\n"
        "1. must run on-premises\n2. at most two operators\n3. no more than $500 a month"
    )
    return Case("reasoning", ChatRequest(messages=(Message.user(ask),)), StepContext())


def _document(rng: random.Random) -> Case:
    verb = rng.choice(
        ("Summarize the following report.", "Extract every date and amount.", "List the key points.")
    )
    document = _prose(rng, rng.randint(1_200, 4_500))
    return Case("document", ChatRequest(messages=(Message.user(f"{verb}\n\n{document}"),)), StepContext())


def _tools(count: int) -> tuple[ToolSpec, ...]:
    return tuple(
        ToolSpec(
            name=f"tool_{i}",
            description=f"Tool number {i}: reads or changes part of the workspace.",
            parameters={
                "type": "object",
                "properties": {"path": {"type": "string"}, "query": {"type": "string"}},
                "required": ["path"],
            },
        )
        for i in range(count)
    )


def _agent(rng: random.Random) -> Case:
    tools = _tools(rng.randint(5, 15))
    messages: list[Message] = [
        Message.system("You are a coding agent. Use the tools to inspect and fix the repository."),
        Message.user("The nightly build fails; find out why and fix it."),
    ]
    records: list[ToolRecord] = []
    steps = rng.randint(1, 12)
    for step in range(steps):
        looping = step > 0 and rng.random() < 0.2
        tool = tools[0 if looping else rng.randrange(len(tools))]
        arguments = '{"path": "src/build.py"}' if looping else json.dumps({"path": f"src/m{step}.py"})
        failed = rng.random() < 0.25
        messages.append(Message.assistant("", [ToolCall(f"c{step}", tool.name, arguments)]))
        result = "Error: build step failed with exit code 2" if failed else _prose(rng, rng.randint(20, 150))
        messages.append(
            Message.tool(f"c{step}", result, name=tool.name, is_error=failed and rng.random() < 0.5)
        )
        records.append(ToolRecord(tool.name, ok=not failed, args_hash=hash_arguments(arguments)))
    context = StepContext(
        agent_id="coder",
        run_id="nightly",
        step_type=rng.choice((StepType.ACT, StepType.OBSERVE, StepType.PLAN, StepType.REFLECT)),
        step_index=steps,
        tool_history=tuple(records) if rng.random() < 0.5 else (),
        budget_left_share=rng.random(),
    )
    return Case("agent", ChatRequest(messages=tuple(messages), tools=tools), context)


_MIX: tuple[tuple[Callable[[random.Random], Case], float], ...] = (
    (_chat, 0.30),
    (_code, 0.20),
    (_math, 0.15),
    (_reasoning, 0.10),
    (_document, 0.05),
    (_agent, 0.20),
)


def cases(n: int, seed: int) -> list[Case]:
    """`n` requests drawn from the mix above; the same seed always gives the same requests."""
    rng = random.Random(seed)
    makers = [maker for maker, _ in _MIX]
    weights = [weight for _, weight in _MIX]
    return [rng.choices(makers, weights)[0](rng) for _ in range(n)]


def _percentile(sorted_values: list[float], share: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a summary (unless --json) and the JSON result last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="number of requests (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the request generator")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument(
        "--cpu-time", action="store_true", help="time this thread's CPU time instead of wall time"
    )
    parser.add_argument(
        "--policy",
        choices=("default", "scorer"),
        default="default",
        help="the policy timed (default: default)",
    )
    args = parser.parse_args(argv)

    models = registry()
    policy: Policy = DefaultPolicy() if args.policy == "default" else SignalScorer()
    batch = cases(args.n, args.seed)
    for case in batch:  # warm-up: imports, regex caches, branch predictors
        decide(models, policy, case.request, case.context)

    gc.collect()
    timings: list[tuple[str, float]] = []
    clock = time.thread_time_ns if args.cpu_time else time.perf_counter_ns
    for case in batch:
        start = clock()
        decide(models, policy, case.request, case.context)
        timings.append((case.kind, (clock() - start) / 1_000))

    values = sorted(t for _, t in timings)
    by_kind = {
        kind: round(statistics.median(t for k, t in timings if k == kind), 1)
        for kind in sorted({k for k, _ in timings})
    }
    result = {
        "p50_us": round(_percentile(values, 0.50), 1),
        "p99_us": round(_percentile(values, 0.99), 1),
        "n": len(values),
        "policy": args.policy,
        "clock": clock.__name__,
        "mean_us": round(statistics.fmean(values), 1),
        "max_us": round(values[-1], 1),
        "p50_us_by_kind": by_kind,
    }
    if not args.json:
        counts = {kind: sum(k == kind for k, _ in timings) for kind in by_kind}
        for kind, median in by_kind.items():
            print(f"{kind:<10} n={counts[kind]:<4} p50 {median:>8.1f} us")
        p50, p99 = result["p50_us"], result["p99_us"]
        print(f"{'all':<10} n={len(values):<4} p50 {p50:>8.1f} us   p99 {p99:>8.1f} us")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
