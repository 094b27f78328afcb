"""How long each step of an agent run takes to be decided, per adapter, as a run sends its history again.

    uv run python tests/benchmarks/agent_step_latency.py [--json] [--runs 150] [--seed 7] [--cpu-time]

`decision_latency.py` times each request as a new history, built anew for the call. An agent run is
different: LangGraph's state and LlamaIndex's memory hold the run's messages, and every step sends all
of them again with the latest ones added. Here the agent histories of `decision_latency.py` (same
generator, same seed) are sent the way a run sends them: step k sends the system prompt, the user's
request and the first k tool calls with their results, the same message objects from one step to the
next. Each adapter has its own model and router, and its own stores of what the core keeps per text
(as in `decision_latency.py`), runs are interleaved across adapters (which of the two goes first turns
from one step to the next, for the reason `decision_latency.py` gives), and a step is timed from the
framework's messages to the decision (`langchain`: `RoutedChatModel._step` then `Router.decide`;
`llamaindex`: `RoutedLLM._plan` then `Router.decide`).
The last line printed is a JSON object: per adapter {"p50_us", "p99_us", "mean_us", "p50_us_by_step"
(steps 1, 2-4, 5-8 and 9 on)}, plus "runs", "steps" and "clock".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from decision_latency import (
    Frameworks,
    _langchain_message,
    _llamaindex_message,
    _percentile,
    cases,
    registry,
)

from gearshift import Router
from gearshift.datasets import OutcomeTable
from gearshift.learning import DefaultPolicy
from gearshift.providers import ReplayProvider

_BANDS = ((1, 1, "1"), (2, 4, "2-4"), (5, 8, "5-8"), (9, 10_000, "9+"))


def _band(step: int) -> str:
    return next(name for low, high, name in _BANDS if low <= step <= high)


async def _run_steps(
    runs: list[Any], frameworks: Frameworks, clock: Callable[[], int]
) -> dict[str, list[tuple[int, float]]]:
    """Per adapter, (step, time in us) for every step of every run, adapters interleaved per step."""
    timings: dict[str, list[tuple[int, float]]] = {"langchain": [], "llamaindex": []}
    langchain, llamaindex = frameworks.langchain, frameworks.llamaindex
    for case in runs:
        messages, context, count = case.request.messages, case.context, len(case.request.tools)
        lc_history = [_langchain_message(m) for m in messages]  # one object per message, for the run
        li_history = [_llamaindex_message(m) for m in messages]
        lc_options: dict[str, Any] = {"tools": frameworks.langchain_tools[:count]}
        li_options: dict[str, Any] = {
            "tools": frameworks.llamaindex_tools[:count],
            "tool_required": False,
            "parallel_tool_calls": False,
        }
        # Step k sends the opening two messages and k - 1 tool calls with their results.
        for step, end in enumerate(range(2, len(messages) + 1, 2), start=1):
            metadata = {"thread_id": context.run_id, "langgraph_node": "model", "langgraph_step": step}
            for adapter in ("langchain", "llamaindex") if step % 2 else ("llamaindex", "langchain"):
                frameworks.use_stores(adapter)  # each adapter its own (see above)
                start = clock()
                if adapter == "langchain":
                    built = langchain._step(lc_history[:end], None, metadata, dict(lc_options))
                    frameworks.langchain_router.decide(built.request, built.context)
                else:
                    call = await llamaindex._plan(li_history[:end], dict(li_options))
                    frameworks.llamaindex_router.decide(call.request, call.context)
                timings[adapter].append((step, (clock() - start) / 1_000))
    return timings


def _summary(rows: list[tuple[int, float]]) -> dict[str, Any]:
    values = sorted(t for _, t in rows)
    return {
        "p50_us": round(_percentile(values, 0.50), 1),
        "p99_us": round(_percentile(values, 0.99), 1),
        "mean_us": round(statistics.fmean(values), 1),
        "p50_us_by_step": {
            name: round(statistics.median(t for s, t in rows if _band(s) == name), 1)
            for _, _, name in _BANDS
            if any(_band(s) == name for s, _ in rows)
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a summary (unless --json) and the JSON result last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=150, help="number of agent runs (default 150)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the request generator")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument(
        "--cpu-time", action="store_true", help="time this thread's CPU time instead of wall time"
    )
    args = parser.parse_args(argv)

    def new_router() -> Router:
        return Router(registry(), policy=DefaultPolicy(), providers=[ReplayProvider(OutcomeTable([]))])

    def agent_runs(count: int, seed: int) -> list[Any]:
        found: list[Any] = []
        size = count * 6
        while len(found) < count:
            found = [c for c in cases(size, seed) if c.kind == "agent"][:count]
            size *= 2
        return found

    clock = time.thread_time_ns if args.cpu_time else time.perf_counter_ns
    # Warm-up on other runs, tool objects and routers: imports, regex caches.
    asyncio.run(_run_steps(agent_runs(min(args.runs, 40), args.seed + 1), Frameworks(new_router), clock))
    runs, frameworks = agent_runs(args.runs, args.seed), Frameworks(new_router)
    gc.collect()
    timings = asyncio.run(_run_steps(runs, frameworks, clock))
    adapters = {adapter: _summary(rows) for adapter, rows in timings.items()}
    result = {
        "runs": len(runs),
        "steps": len(timings["langchain"]),
        "clock": clock.__name__,
        "adapters": adapters,
    }
    if not args.json:
        print(f"{'adapter':<11} {'p50 us':>8} {'p99 us':>8}   p50 us by step")
        for adapter, figures in adapters.items():
            steps = " ".join(f"{k}: {v:.0f}" for k, v in figures["p50_us_by_step"].items())
            print(f"{adapter:<11} {figures['p50_us']:>8.1f} {figures['p99_us']:>8.1f}   {steps}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
