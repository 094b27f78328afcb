"""Where a Redis reserve+commit pair's time goes: the client's CPU, the server's, and their floors.

One process runs `--threads` threads, each with its own event loop and ledger, looping
`BudgetLedger.reserve` then `commit` on two keys (one with a limit that never refuses) against its
own `redis-server` on 127.0.0.1. It reports, per pair:

- `client_cpu_us`: CPU of this process (every thread: ledger, store, event loops);
- `server_cpu_us`: CPU of redis-server (`INFO cpu`), and `script_us` the part spent inside the
  ledger's script (`INFO commandstats`, EVALSHA);
- `floor_client_cpu_us`: the client CPU of two bare round trips (`PING` over the same asyncio
  protocol the store uses), the least a reserve and a commit that each wait for an answer can cost
  a Python event loop here; `floor_server_cpu_us` what redis-server spends on them.

`pairs_per_core_s` = 1e6 / (client + server CPU per pair): how many pairs per second one core could
do with nothing else running, a bound that no scheduling can beat. Compare it with the contention
benchmark (8 processes x 4 threads on however many cores the machine has).

    uv run python tests/benchmarks/ledger_cost.py [--threads 4] [--pairs 2000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from gearshift.budgets import BudgetLedger, BudgetLimit
from gearshift.budgets._redis import RedisStore
from gearshift.budgets._redis_link import connect_link, pack
from gearshift.testing._redis import LocalRedisServer


def in_threads(threads: int, body: Callable[[int], Awaitable[None]]) -> float:
    """Run `body(i)` in `threads` threads, each in its own event loop; the wall seconds it took."""
    pool = [threading.Thread(target=lambda i=i: asyncio.run(body(i))) for i in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started


def measured(
    server: LocalRedisServer, threads: int, body: Callable[[int], Awaitable[None]]
) -> dict[str, float]:
    """Client and server CPU seconds, script microseconds and calls, wall seconds of one run."""
    admin = redis.Redis.from_url(server.url)
    try:
        admin.config_resetstat()
        before = admin.info("cpu")
        cpu = time.process_time()
        wall = in_threads(threads, body)
        client = time.process_time() - cpu
        after = admin.info("cpu")
        scripts = admin.info("commandstats").get("cmdstat_evalsha", {"usec": 0, "calls": 0})
    finally:
        admin.close()
    used = sum(after[k] - before[k] for k in ("used_cpu_user", "used_cpu_sys"))
    return {
        "client": client,
        "server": used,
        "script_us": scripts["usec"],
        "calls": scripts["calls"],
        "wall": wall,
    }


def run(threads: int, pairs: int) -> dict[str, Any]:
    with LocalRedisServer() as server:

        async def ledger_pairs(index: int) -> None:
            store = RedisStore(server.url, prefix=f"cost-{index}:")
            ledger = BudgetLedger(store, [BudgetLimit(key="cost:shared", usd=1e6)], reservation_ttl=60)
            try:
                await ledger.usage(["cost:shared"])  # connected and the script loaded, off the clock
                keys = ("cost:shared", f"cost:thread:{index}")
                for _ in range(pairs):
                    reservation = await ledger.reserve(keys, usd=0.0005, tokens=100)
                    await ledger.commit(reservation, usd=0.0004, tokens=80)
            finally:
                await ledger.aclose()

        async def ping_pairs(index: int) -> None:
            link = await connect_link(server.url, connect_timeout=5.0, answer_timeout=10.0)
            ping = pack("PING")
            try:
                for _ in range(2 * pairs):
                    await link.call(ping, 10.0)
            finally:
                link.close()

        in_threads(threads, ledger_pairs)  # warm up: imports, script load, allocator
        ledger = measured(server, threads, ledger_pairs)
        floor = measured(server, threads, ping_pairs)

    count = threads * pairs
    client_us, server_us = 1e6 * ledger["client"] / count, 1e6 * ledger["server"] / count
    return {
        "threads": threads,
        "pairs": count,
        "pairs_per_s": round(count / ledger["wall"], 1),
        "client_cpu_us": round(client_us, 1),
        "server_cpu_us": round(server_us, 1),
        "script_us": round(ledger["script_us"] / count, 1),
        "script_calls_per_pair": round(ledger["calls"] / count, 2),
        "floor_client_cpu_us": round(1e6 * floor["client"] / count, 1),
        "floor_server_cpu_us": round(1e6 * floor["server"] / count, 1),
        "pairs_per_core_s": round(1e6 / (client_us + server_us), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=2000, help="reserve+commit pairs per thread")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args()
    figures = run(args.threads, args.pairs)
    print(f"redis ledger, {figures['threads']} threads x {args.pairs} reserve+commit pairs, one process")
    f = figures
    print(f"  pairs/s                {f['pairs_per_s']:.0f}")
    print(f"  client CPU per pair    {f['client_cpu_us']:.0f} µs (floor {f['floor_client_cpu_us']:.0f} µs)")
    print(f"  server CPU per pair    {f['server_cpu_us']:.0f} µs (floor {f['floor_server_cpu_us']:.0f} µs)")
    print(f"  in the script          {f['script_us']:.0f} µs over {f['script_calls_per_pair']} calls")
    print(f"  pairs per core-second  {figures['pairs_per_core_s']:.0f}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
