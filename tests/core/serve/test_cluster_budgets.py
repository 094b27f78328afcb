"""Three `gearshift serve` processes share one budget on a real `redis-server`: 32 concurrent clients
spread over them never overspend a hard limit, with or without `max_tokens`, and a proxy killed after
the run takes no committed spend with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest
from proxy_support import ProxyProcess, write_config

from gearshift.budgets import UsageQuery
from gearshift.budgets._redis import RedisStore
from gearshift.testing import LocalOpenAIServer, LocalRedisServer, RedisServerMissing

LIMIT_USD = 0.004
CLIENTS = 32
KEYS = {"plain": None, "capped": 40}  # budget key -> the clients' max_tokens
PROMPT = "Tell me everything about the history of the bicycle, its inventors and its races. " * 3


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        server = LocalRedisServer()
    except RedisServerMissing as missing:
        pytest.skip(str(missing))
    with server:
        yield server.url


async def _client(
    proxy: ProxyProcess, key: str, max_tokens: int | None, costs: list[float], refusals: list[int]
) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as client:
        while True:
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="auto",
                    messages=[{"role": "user", "content": PROMPT}],
                    extra_headers={"x-gearshift-budget-keys": f"team:{key}"},
                    **({"max_tokens": max_tokens} if max_tokens else {}),  # type: ignore[arg-type]
                )
            except openai.RateLimitError:
                refusals.append(1)
                return
            costs.append(float(raw.headers["x-gearshift-cost-usd"]))


def test_three_proxies_never_overspend_one_redis_budget(tmp_path: Path, redis_url: str) -> None:
    budgets = f'[budgets]\nstore = "{redis_url}"\n' + "".join(
        f'\n[[budgets.limits]]\nkey = "team:{key}"\nusd = {LIMIT_USD}\nmode = "hard"\n' for key in KEYS
    )
    with LocalOpenAIServer(models=("small", "large")) as server, ExitStack() as stack:
        proxies = [
            stack.enter_context(
                ProxyProcess(
                    write_config(
                        tmp_path, server.base_url, budgets=budgets, name=f"p{i}.toml", log=f"p{i}.db"
                    ),
                    wait=False,
                )
            )
            for i in range(3)
        ]
        for proxy in proxies:
            proxy.wait_ready()
        costs: dict[str, list[float]] = {}
        for key, max_tokens in KEYS.items():
            asyncio.run(_reset(redis_url, key))
            refusals: list[int] = []
            costs[key] = []

            async def run(key: str, max_tokens: int | None, refusals: list[int]) -> None:
                await asyncio.gather(
                    *(_client(proxies[i % 3], key, max_tokens, costs[key], refusals) for i in range(CLIENTS))
                )

            asyncio.run(run(key, max_tokens, refusals))
            assert len(refusals) == CLIENTS  # every client ran until the budget refused it
        proxies[0].kill()  # a crash after the runs: what it committed is in Redis, not in the process

    for key in KEYS:
        total = asyncio.run(_spent(redis_url, key))
        assert total <= LIMIT_USD + 1e-12, key  # overspend exactly 0
        assert total == pytest.approx(sum(costs[key]), rel=1e-9), key  # every answered call committed
        assert total > LIMIT_USD / 2 and len(costs[key]) >= 5, key


async def _spent(url: str, key: str) -> float:
    store = RedisStore(url)
    try:
        (usage,) = await store.usage([UsageQuery(f"team:{key}", 0.0)], now=time.time())
    finally:
        await store.aclose()
    assert usage.reserved_usd == pytest.approx(0.0, abs=1e-12)
    return usage.spent_usd


async def _reset(url: str, key: str) -> None:
    store = RedisStore(url)
    try:
        await store.reset(f"team:{key}")
    finally:
        await store.aclose()
