"""budget_contention.py `--no-max-tokens`: verbose models against one hard limit, through the router.

`callers` concurrent callers, each with its own router, ledger and store connection (one shared
`MemoryStore` for `memory`), call a local OpenAI-compatible server without `max_tokens` until the
ledger refuses them. The server's models are scripted to write ten times the output the router
expects of a call, so only the output cap the router sends keeps spend within the reservation.
Every call is also charged to a key of its caller, so the run can check that nothing was lost: the
shared total must equal the sum of the callers' totals, and what the callers were billed.
`refused_with_room` counts the refusals that came while what was left of the limit (as the refusal
says: limit - spent - reserved) still paid for a useful answer (`USEFUL_OUTPUT_TOKENS` of output) on
the cheapest model: a caller stopped before the budget was really spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
)
from gearshift.budgets import BudgetLedger, BudgetLimit, BudgetStore, MemoryStore, UsageQuery
from gearshift.budgets._spend_index import from_nano, to_nano
from gearshift.providers import OpenAIProvider
from gearshift.routing._budget_fit import USEFUL_OUTPUT_TOKENS
from gearshift.routing._decide import DEFAULT_OUTPUT_TOKENS
from gearshift.signals._tokens import estimate_request_tokens
from gearshift.testing import LocalOpenAIServer, Reply

AGENT = "bench-verbose"
SHARED = f"agent:{AGENT}"
PROMPT = "Summarise the main idea of the following paragraph in one sentence: routing saves money."
VERBOSE = Reply(text="word " * (10 * DEFAULT_OUTPUT_TOKENS))  # 10x what the router expects of a call
REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=1.0, output=4.0)
        ),
        ModelSpec(
            id="large", provider="local", model="large", tier=2, prices=ModelPrices(input=5.0, output=20.0)
        ),
    ]
)


def caller_key(index: int) -> str:
    return f"bench:caller:{index}"


@contextlib.contextmanager
def store_opener(kind: str) -> Iterator[Callable[[], BudgetStore]]:
    """A function that opens a connection to one fresh ledger of `kind` (memory: one shared store)."""
    if kind == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif kind == "sqlite":
        from gearshift.budgets._sqlite import SQLiteStore

        with tempfile.TemporaryDirectory(prefix="gearshift-bench-") as folder:
            path = Path(folder) / "budgets.db"
            yield lambda: SQLiteStore(path)
    else:
        from gearshift.budgets._redis import RedisStore

        prefix = f"gearshift-bench-{uuid.uuid4().hex[:12]}:"
        if os.environ.get("REDIS_URL"):
            url = os.environ["REDIS_URL"]
            yield lambda: RedisStore(url, prefix=prefix)
        else:
            from gearshift.testing._redis import LocalRedisServer

            with LocalRedisServer() as server:
                yield lambda: RedisStore(server.url, prefix=prefix)


async def attack(kind: str, callers: int, limit: float) -> dict[str, Any]:
    """Run the attack on a `kind` ledger; the figures (overspend, lost spend, calls, caps seen)."""
    with LocalOpenAIServer(models=("small", "large")) as server, store_opener(kind) as open_store:
        for model in ("small", "large"):
            server.script(model, *[VERBOSE] * 20_000)
        started = time.perf_counter()
        results = await asyncio.gather(*(_caller(i, server, open_store(), limit) for i in range(callers)))
        seconds = time.perf_counter() - started
        reader = open_store()
        try:
            keys = [SHARED] + [caller_key(i) for i in range(callers)]
            usage = await reader.usage([UsageQuery(k, 0.0) for k in keys], now=time.time())
        finally:
            await reader.aclose()
        caps = [r.body.get("max_tokens") for r in server.requests]
    shared_nano = to_nano(usage[0].spent_usd)
    lost_nano = abs(shared_nano - sum(to_nano(u.spent_usd) for u in usage[1:]))
    return {
        "limit_usd": limit,
        "committed_usd": from_nano(shared_nano),
        "overspend_usd": max(0.0, from_nano(shared_nano - to_nano(limit))),
        "refusals": sum(r["refusals"] for r in results),
        "refused_with_room": sum(r["refused_with_room"] for r in results),
        "largest_room_at_refusal_usd": max((r["room"] for r in results), default=0.0),
        "store": kind,
        "callers": callers,
        "calls": sum(r["calls"] for r in results),
        "calls_cut_at_cap": sum(r["cut"] for r in results),
        "largest_cap_sent": max((c for c in caps if c is not None), default=None),
        "uncapped_requests": sum(1 for c in caps if c is None),
        "largest_output_tokens": max((r["largest_output"] for r in results), default=0),
        "reserved_left_usd": usage[0].reserved_usd,
        "lost_usd": from_nano(lost_nano),  # the shared total against the sum of the callers' totals
        "billed_usd": from_nano(sum(r["billed_nano"] for r in results)),  # what the answers cost
        "seconds": round(seconds, 3),
    }


async def _caller(index: int, server: LocalOpenAIServer, store: BudgetStore, limit: float) -> dict[str, Any]:
    ledger = BudgetLedger(store, [BudgetLimit(name="shared", key=SHARED, usd=limit)])
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=30.0)
    router = Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger)
    context = StepContext(agent_id=AGENT, budget_keys=(caller_key(index),))
    request = ChatRequest(messages=(Message.user(PROMPT),))  # no max_tokens
    useful = min(m.estimate_cost(estimate_request_tokens(request), USEFUL_OUTPUT_TOKENS) for m in REGISTRY)
    billed_nano = calls = cut = refusals = largest = with_room = 0
    room = 0.0
    try:
        while True:
            try:
                answer = await router.acomplete(request, context)
            except BudgetExceeded as refused:
                refusals += 1
                room = max(0.0, float(refused.limit) - float(refused.spent) - float(refused.reserved))
                with_room += room >= useful
                break
            billed_nano += to_nano(answer.cost_usd)
            calls += 1
            cut += answer.response.finish_reason == "length"
            largest = max(largest, answer.usage.output_tokens)
    finally:
        await router.aclose()
    return {
        "billed_nano": billed_nano,
        "calls": calls,
        "cut": cut,
        "refusals": refusals,
        "refused_with_room": with_room,
        "room": room,
        "largest_output": largest,
    }
