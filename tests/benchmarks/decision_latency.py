"""How long one call takes to be decided, per adapter, on requests built anew as users' calls build them.

    uv run python tests/benchmarks/decision_latency.py [--json] [--n 1000] [--seed 7] [--cpu-time]
                                                       [--policy default|scorer]

Builds a registry of four models in three tiers (explicit prices, no network) and `n` mixed requests,
generated deterministically from the seed: short chat, code, math, reasoning, long documents, and
agent histories with tools, tool calls, tool errors and repeated calls. Each request is then held the
way each framework holds it (untimed), and one call's work up to the decision is timed per adapter:

- `core`: a new `ChatRequest` over the application's messages and its `ToolSpec`s (defined once, as an
  application defines its tools), then `Router.decide`;
- `langchain`: `RoutedChatModel` builds the request and step context from LangChain messages and the
  OpenAI-format tool dicts `bind_tools` passes (new `ToolSpec`s on every call), then `Router.decide`;
- `llamaindex`: `RoutedLLM` builds them from `ChatMessage`s and `FunctionTool`s as every call does
  (`RoutedLLM._plan`; its tool specs are kept per tool object, as on a real agent's steps), then
  `Router.decide`;
- `mcp`: the `route` tool's work for its arguments (the prompt, the step type and the tool history,
  validated from JSON as the SDK does), `Router.adecide` included.

Nothing is warmed up on the objects timed: a warm-up pass over other requests, with their own tool
objects and routers, loads imports and caches first. Each adapter has a router (and a policy) of its
own, as it would alone in an application: what a policy keeps from one call for the next (the default
policy keeps what a text adds to its margins) is never handed from one adapter to the next on the
same request, nor is what the core keeps per text (token estimates, the reading of a request's
instruction, the hashes of tool-call arguments): each adapter reads and fills stores of its own.
Calls are interleaved across adapters so drift on a shared machine hits each alike, in an order that
turns by one adapter from each request to the next: the adapters' views of a request share its texts,
and the first call to read them pays for bringing them into the CPU's caches (and for their string
hashes) for the calls after it, which in a fixed order was always the core's. They are timed with
`time.perf_counter_ns` (wall time), or with `time.thread_time_ns` under `--cpu-time`, which leaves out
the time other processes took the CPU.
The last line printed is a JSON object: per adapter {"p50_us", "p99_us", "mean_us", "max_us",
"decide_p50_us" (the decision alone, where it is apart from building the request), "p50_us_by_kind",
"decide_p50_us_by_kind" (empty where the decision is not apart)},
plus "n", "policy" and "clock".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import FunctionTool

from gearshift import (
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    StepContext,
    StepType,
    ToolCall,
    ToolRecord,
    ToolSpec,
    hash_arguments,
)
from gearshift import _context as step_contexts
from gearshift import _text_tokens as text_tokens
from gearshift.datasets import OutcomeTable
from gearshift.learning import DefaultPolicy
from gearshift.policies import Policy, SignalScorer
from gearshift.providers import ReplayProvider
from gearshift.signals import _signals as signals
from gearshift_langchain import RoutedChatModel
from gearshift_llamaindex import RoutedLLM
from gearshift_llamaindex._convert import chat_message
from gearshift_mcp._schemas import ToolUse
from gearshift_mcp._service import RouterTools

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
_TOOLSET = 15  # an agent's tools; each agent request offers the first 5 to 15 of them
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
            provider="replay",  # nothing is called: the router only decides
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
    tools = _tools(rng.randint(5, _TOOLSET))
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


# -- each framework's view of a request, built untimed -----------------------------------------------

Timed = Callable[[], Awaitable[float | None]]
"""One call's work up to the decision; returns the decision's own share in ns when it is apart."""


def _tool_fn(path: str, query: str | None = None) -> str:
    """Reads or changes part of the workspace."""
    return path


class Frameworks:
    """One agent's tools as each framework holds them, and the adapters, each over a router of its own.

    A warm-up pass gets its own instance, so the timed pass starts on tool objects and routers nothing
    has seen.
    """

    def __init__(self, new_router: Callable[[], Router]) -> None:
        self.router, self.langchain_router, self.llamaindex_router = new_router(), new_router(), new_router()
        self.specs = _tools(_TOOLSET)
        self.langchain_tools = [
            convert_to_openai_tool({"name": t.name, "description": t.description, "parameters": t.parameters})
            for t in self.specs
        ]
        self.llamaindex_tools = [
            FunctionTool.from_defaults(fn=_tool_fn, name=t.name, description=t.description)
            for t in self.specs
        ]
        self.langchain = RoutedChatModel(
            router=self.langchain_router, agent_id="coder", self_escalation=False
        )
        self.llamaindex = RoutedLLM(self.llamaindex_router, agent_id="coder", self_escalation=False)
        self.mcp = RouterTools(new_router())
        # What the core keeps per text (token estimates, readings of the user's request, hashes of
        # tool-call arguments, which both adapters' step contexts read): one set of stores per
        # adapter, as each has its own router.
        self.kept: dict[str, tuple[dict[str, int], dict[str, Any], dict[Any, str]]] = {
            adapter: ({}, {}, {}) for adapter in ("core", "langchain", "llamaindex", "mcp")
        }

    def use_stores(self, adapter: str) -> None:
        """Make the core read and fill `adapter`'s own stores of what it keeps per text."""
        text_tokens._KEPT, signals._KEPT_INSTRUCTIONS, step_contexts._hash_flat._kept = self.kept[adapter]

    def calls(self, case: Case, clock: Callable[[], int]) -> dict[str, Timed]:
        """The four adapters' calls for `case`, each building its request anew when run."""
        router = self.router
        messages, context, count = case.request.messages, case.context, len(case.request.tools)
        specs = self.specs[:count]
        lc_messages = [_langchain_message(m) for m in messages]
        lc_options: dict[str, Any] = {"tools": self.langchain_tools[:count]} if count else {}
        lc_metadata: dict[str, Any] = (
            {"thread_id": context.run_id, "langgraph_node": "model", "langgraph_step": context.step_index}
            if context.run_id
            else {}
        )
        li_messages = [_llamaindex_message(m) for m in messages]
        li_options: dict[str, Any] = (
            {"tools": self.llamaindex_tools[:count], "tool_required": False, "parallel_tool_calls": False}
            if count
            else {}
        )
        prompt = next(m.text for m in reversed(messages) if m.role == "user")
        history = [{"name": r.name, "ok": r.ok} for r in context.tool_history]

        async def core() -> float:
            request = ChatRequest(messages=messages, tools=specs)
            start = clock()
            router.decide(request, context)
            return clock() - start

        async def langchain() -> float:
            step = self.langchain._step(lc_messages, None, lc_metadata, dict(lc_options))
            start = clock()
            self.langchain_router.decide(step.request, step.context)
            return clock() - start

        async def llamaindex() -> float:
            call = await self.llamaindex._plan(li_messages, li_options)
            start = clock()
            self.llamaindex_router.decide(call.request, call.context)
            return clock() - start

        async def mcp() -> None:
            uses = tuple(ToolUse.model_validate(use) for use in history)
            await self.mcp.route(
                prompt,
                step_type=context.step_type.value,
                agent_id=context.agent_id,
                run_id=context.run_id,
                step_index=context.step_index,
                tool_history=uses,
            )

        return {"core": core, "langchain": langchain, "llamaindex": llamaindex, "mcp": mcp}


def _langchain_message(message: Message) -> BaseMessage:
    if message.role == "system":
        return SystemMessage(message.text)
    if message.role == "user":
        return HumanMessage(message.text)
    if message.role == "assistant":
        calls = [{"name": c.name, "args": json.loads(c.arguments), "id": c.id} for c in message.tool_calls]
        return AIMessage(message.text, tool_calls=calls)
    return ToolMessage(
        message.text,
        tool_call_id=message.tool_call_id or "",
        name=message.name,
        status="error" if message.is_error else "success",
    )


def _llamaindex_message(message: Message) -> ChatMessage:
    if message.role == "assistant":
        return chat_message(message.text, message.tool_calls)
    if message.role == "tool":
        extra = {"tool_call_id": message.tool_call_id, "name": message.name, "is_error": message.is_error}
        return ChatMessage(role=MessageRole.TOOL, content=message.text, additional_kwargs=extra)
    return ChatMessage(role=MessageRole(message.role), content=message.text)


# -- the run ---------------------------------------------------------------------------------------


async def _run(
    batch: list[Case], frameworks: Frameworks, clock: Callable[[], int]
) -> dict[str, list[tuple[str, float, float | None]]]:
    """Per adapter, (kind, call time in us, decision time in us or None) for every case, interleaved."""
    timings: dict[str, list[tuple[str, float, float | None]]] = {}
    for turn, case in enumerate(batch):
        calls = list(frameworks.calls(case, clock).items())
        first = turn % len(calls)  # each adapter reads the request's texts first as often (see above)
        for adapter, call in calls[first:] + calls[:first]:
            frameworks.use_stores(adapter)
            start = clock()
            decided = await call()
            total = (clock() - start) / 1_000
            timings.setdefault(adapter, []).append(
                (case.kind, total, decided / 1_000 if decided is not None else None)
            )
    return timings


def _summary(timings: list[tuple[str, float, float | None]]) -> dict[str, Any]:
    values = sorted(t for _, t, _ in timings)
    decided = sorted(d for _, _, d in timings if d is not None)
    return {
        "p50_us": round(_percentile(values, 0.50), 1),
        "p99_us": round(_percentile(values, 0.99), 1),
        "mean_us": round(statistics.fmean(values), 1),
        "max_us": round(values[-1], 1),
        "decide_p50_us": round(_percentile(decided, 0.50), 1) if decided else None,
        "p50_us_by_kind": {
            kind: round(statistics.median(t for k, t, _ in timings if k == kind), 1)
            for kind in sorted({k for k, _, _ in timings})
        },
        "decide_p50_us_by_kind": {
            kind: round(statistics.median(d for k, _, d in timings if k == kind and d is not None), 1)
            for kind in sorted({k for k, _, d in timings if d is not None})
        },
    }


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

    def new_router() -> Router:
        policy: Policy = DefaultPolicy() if args.policy == "default" else SignalScorer()
        return Router(registry(), policy=policy, providers=[ReplayProvider(OutcomeTable([]))])

    clock = time.thread_time_ns if args.cpu_time else time.perf_counter_ns
    # Warm-up on other requests, tool objects and routers: imports, regex caches, branch predictors.
    asyncio.run(_run(cases(min(args.n, 200), args.seed + 1), Frameworks(new_router), clock))
    batch, frameworks = cases(args.n, args.seed), Frameworks(new_router)
    gc.collect()
    timings = asyncio.run(_run(batch, frameworks, clock))

    adapters = {adapter: _summary(rows) for adapter, rows in timings.items()}
    result = {"n": len(batch), "policy": args.policy, "clock": clock.__name__, "adapters": adapters}
    if not args.json:
        print(f"{'adapter':<11} {'p50 us':>8} {'p99 us':>8} {'decide p50':>11}   p50 us by kind")
        for adapter, figures in adapters.items():
            decided = figures["decide_p50_us"]
            kinds = " ".join(f"{k} {v:.0f}" for k, v in figures["p50_us_by_kind"].items())
            shown = "-" if decided is None else f"{decided:.1f}"
            print(f"{adapter:<11} {figures['p50_us']:>8.1f} {figures['p99_us']:>8.1f} {shown:>11}   {kinds}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
