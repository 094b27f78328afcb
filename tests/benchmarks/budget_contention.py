"""Budget contention: processes x threads spend against one hard limit until refused; kill -9 one.

Every thread of every process loops `BudgetLedger.reserve` (a random $0.0001-$0.001) then `commit`
(a random fraction of it, so the unspent rest must be released) on one shared key with a hard
limit, until the ledger refuses it. Each call also spends on a key of its own process, so the run can
check that nothing was lost: the shared total must equal the sum of the per-process totals, and every
surviving process's total what that process says it committed. With `--kill-one`, one process gets
SIGKILL once the spend passes `--kill-at` of the limit; its live reservations must still count
against the limit until `--ttl` seconds have passed, and no longer after (asked of the store at that
time rather than waited for). For SQLite the file must also pass `PRAGMA integrity_check`.

    uv run python tests/benchmarks/budget_contention.py --store sqlite|redis [--kill-one] [--json]
        [--processes 8] [--threads 4] [--limit 1.0] [--ttl 10] [--kill-at 0.5] [--seed N]

With `--store redis` it starts its own `redis-server` on 127.0.0.1, or uses `REDIS_URL` when set
(under a fresh key prefix, so existing data is untouched). Prints human-readable lines, then one JSON
object last: {"limit_usd", "committed_usd", "overspend_usd", "refusals", "ops_per_s", ...}.
`ops_per_s` is reserve+commit pairs per second of wall time, counted from the moment every thread
is ready (spawn, imports and connecting excluded); `worker_cpu_us_per_op` is the CPU the workers
spent per pair, which, unlike `ops_per_s`, does not depend on what else the machine is running.
Exits 1 when the limit was passed, spend was lost or a dead process's reservations did not expire.

    uv run python tests/benchmarks/budget_contention.py --no-max-tokens --store memory|sqlite|redis
        [--callers 8] [--limit 0.05] [--json]

`--no-max-tokens` attacks the limit through the router instead (see `_verbose_attack`): concurrent
callers without `max_tokens` against models scripted to write 10x the expected output. Figures:
{"limit_usd", "committed_usd", "overspend_usd", "refusals", "refused_with_room", "calls",
"calls_cut_at_cap", "largest_cap_sent", "uncapped_requests", "lost_usd", "billed_usd", ...}; exits 1
when the limit was passed, spend was lost, or a request went out without an output cap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gearshift import BudgetExceeded
from gearshift.budgets import BudgetLedger, BudgetLimit, BudgetStore, UsageQuery
from gearshift.budgets._spend_index import from_nano, to_nano

MIN_USD, MAX_USD = 0.0001, 0.001


@dataclass(frozen=True)
class Target:
    """Where the ledger lives: enough for any process to open its own store."""

    kind: str
    where: str  # SQLite file path or Redis URL
    prefix: str = ""

    def open(self) -> BudgetStore:
        if self.kind == "sqlite":
            from gearshift.budgets._sqlite import SQLiteStore

            return SQLiteStore(self.where)
        from gearshift.budgets._redis import RedisStore

        return RedisStore(self.where, prefix=self.prefix)


SHARED = "bench:shared"


def proc_key(index: int) -> str:
    return f"bench:process:{index}"


# -- inside each worker process -------------------------------------------------------------------


def worker(
    target: Target,
    index: int,
    threads: int,
    limit: float,
    ttl: float,
    seed: int,
    ready: Any,
    start: Any,
    ops: Any,  # a shared ctypes array of c_long, one slot per thread
    results: Any,
) -> None:
    """One process: `threads` threads, each with its own event loop, store and ledger."""
    out: list[dict[str, Any]] = []
    lock = threading.Lock()

    def thread_main(slot: int) -> None:
        result = asyncio.run(spend(target, index, slot, limit, ttl, seed, ready, start, ops))
        with lock:
            out.append(result)

    pool = [
        threading.Thread(target=thread_main, args=(index * threads + t,), name=f"spender-{t}")
        for t in range(threads)
    ]
    for thread in pool:
        thread.start()
    start.wait()
    cpu = time.process_time()  # every thread of this process, from the start line to the end
    for thread in pool:
        thread.join()
    results.put((index, out, time.process_time() - cpu))


async def spend(
    target: Target,
    index: int,
    slot: int,
    limit: float,
    ttl: float,
    seed: int,
    ready: Any,
    start: Any,
    ops: Any,  # a shared ctypes array of c_long, one slot per thread
) -> dict[str, Any]:
    rng = random.Random(seed * 1_000_003 + slot)
    store = target.open()
    ledger = BudgetLedger(store, [BudgetLimit(key=SHARED, usd=limit)], reservation_ttl=ttl)
    await ledger.usage([SHARED])  # import, connect, open the file: all before the clock starts
    ready.put(slot)
    await asyncio.to_thread(start.wait)
    keys = (SHARED, proc_key(index))
    committed_nano = refusals = count = 0
    started = time.perf_counter()
    try:
        while True:
            usd = rng.uniform(MIN_USD, MAX_USD)
            try:
                reservation = await ledger.reserve(keys, usd=usd, tokens=0)
            except BudgetExceeded:
                refusals += 1
                break
            actual = usd * rng.random()
            await ledger.commit(reservation, usd=actual, tokens=0)
            committed_nano += to_nano(actual)
            count += 1
            ops[slot] = count  # one writer per slot: no lock needed
    finally:
        await ledger.aclose()
    return {
        "ops": count,
        "committed_nano": committed_nano,
        "refusals": refusals,
        "seconds": time.perf_counter() - started,
    }


# -- the parent -----------------------------------------------------------------------------------


@contextlib.contextmanager
def ledger_target(kind: str) -> Iterator[Target]:
    prefix = f"gearshift-bench-{uuid.uuid4().hex[:12]}:"
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="gearshift-bench-") as folder:
            yield Target("sqlite", str(Path(folder) / "budgets.db"))
    elif os.environ.get("REDIS_URL"):
        yield Target("redis", os.environ["REDIS_URL"], prefix)
    else:
        from gearshift.testing._redis import LocalRedisServer

        with LocalRedisServer() as server:
            yield Target("redis", server.url, prefix)


async def totals(target: Target, keys: list[str], now: float | None = None) -> list[tuple[int, int]]:
    """(spent, reserved) nano-dollars of each key, lifetime, as the store sees them at `now`."""
    store = target.open()
    try:
        usage = await store.usage([UsageQuery(k, 0.0) for k in keys], now=now or time.time())
    finally:
        await store.aclose()
    return [(to_nano(u.spent_usd), to_nano(u.reserved_usd)) for u in usage]


def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    with ledger_target(args.store) as target:
        asyncio.run(totals(target, [SHARED]))  # create the schema (SQLite) before the crowd arrives
        ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
        ops = ctx.Array(ctypes.c_long, args.processes * args.threads, lock=False)
        procs = [
            ctx.Process(
                target=worker,
                args=(target, i, args.threads, args.limit, args.ttl, seed, ready, start, ops, results),
                daemon=True,
            )
            for i in range(args.processes)
        ]
        for proc in procs:
            proc.start()
        for _ in range(args.processes * args.threads):
            ready.get(timeout=120)
        started = time.perf_counter()
        start.set()

        killed: int | None = None
        held_by_dead = 0
        if args.kill_one:
            killed, held_by_dead = kill_mid_way(target, procs[0], args.limit * args.kill_at)
        survivors = [i for i in range(args.processes) if i != killed]
        reports: dict[int, list[dict[str, Any]]] = {}
        cpu_seconds: dict[int, float] = {}
        # The killed process may have reported before the kill landed: wait for every survivor by index.
        while any(i not in reports for i in survivors):
            index, out, cpu = results.get(timeout=300)
            if index == killed:
                continue
            reports[index] = out
            cpu_seconds[index] = cpu
        seconds = time.perf_counter() - started
        for proc in procs:
            proc.join(timeout=30)

        keys = [SHARED] + [proc_key(i) for i in range(args.processes)]
        stored = asyncio.run(totals(target, keys))
        shared_nano = stored[0][0]
        lost_nano = abs(shared_nano - sum(spent for spent, _ in stored[1:]))
        for index in survivors:
            reported = sum(r["committed_nano"] for r in reports[index])
            lost_nano += abs(stored[1 + index][0] - reported)
        expired = None
        if killed is not None:
            # Every survivor has settled; what is still held is the dead process's, and it must stop
            # counting once the ttl has passed (asked of the store at that time, not waited for).
            expired = asyncio.run(totals(target, [SHARED], now=time.time() + args.ttl + 1))[0][1] == 0
        integrity = sqlite_integrity(target.where) if target.kind == "sqlite" else None

    committed = from_nano(shared_nano)
    total_ops = sum(int(ops[i]) for i in range(len(ops)))
    survivor_ops = sum(r["ops"] for out in reports.values() for r in out)
    return {
        "limit_usd": args.limit,
        "committed_usd": committed,
        "overspend_usd": max(0.0, from_nano(shared_nano - to_nano(args.limit))),
        "refusals": sum(r["refusals"] for out in reports.values() for r in out),
        "ops_per_s": round(total_ops / seconds, 1),
        "store": args.store,
        "processes": args.processes,
        "threads": args.threads,
        "ops": total_ops,
        "seconds": round(seconds, 3),
        # CPU the workers used per reserve+commit pair (survivors only): what the machine's load
        # does not change, unlike ops_per_s.
        "worker_cpu_us_per_op": round(1e6 * sum(cpu_seconds.values()) / max(1, survivor_ops), 1),
        "killed": killed is not None,
        "held_by_dead_usd": from_nano(held_by_dead),
        "dead_reservations_expired": expired,
        "lost_usd": from_nano(lost_nano),
        "sqlite_integrity": integrity,
        "seed": seed,
    }


def sqlite_integrity(path: str) -> str:
    """SQLite's own check of the file after the run (and the kill): "ok" when it is sound."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def kill_mid_way(target: Target, victim: Any, at_usd: float) -> tuple[int | None, int]:
    """SIGKILL `victim` (process 0) once the shared spend passes `at_usd`: (0, what it held), or
    (None, 0) when it finished first."""

    async def watch() -> tuple[int | None, int]:
        store = target.open()
        try:
            while victim.is_alive():
                (shared,) = await store.usage([UsageQuery(SHARED, 0.0)], now=time.time())
                if to_nano(shared.spent_usd) >= to_nano(at_usd):
                    os.kill(victim.pid, signal.SIGKILL)
                    await asyncio.to_thread(victim.join, 10)
                    # What the dead process's own key still holds is what it held when it died.
                    (own,) = await store.usage([UsageQuery(proc_key(0), 0.0)], now=time.time())
                    return 0, to_nano(own.reserved_usd)
                await asyncio.sleep(0.02)  # polling costs CPU the workers would otherwise use
            return None, 0  # it finished before the spend got there: nothing was killed
        finally:
            await store.aclose()

    return asyncio.run(watch())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (also how the tests run the benchmark in a small form)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", choices=("memory", "sqlite", "redis"), required=True)
    parser.add_argument(
        "--no-max-tokens",
        action="store_true",
        help="attack through the router: verbose models, no max_tokens",
    )
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers (--no-max-tokens)")
    parser.add_argument("--kill-one", action="store_true", help="SIGKILL one process mid-way")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--limit",
        type=float,
        default=None,
        help="the hard limit, in dollars (1.0; 0.05 with --no-max-tokens)",
    )
    parser.add_argument("--ttl", type=float, default=10.0, help="reservation ttl, in seconds")
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the limit spent at the kill")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.store == "memory" and not args.no_max_tokens:
        parser.error("--store memory holds no spend across processes: use it with --no-max-tokens")
    if args.limit is None:
        args.limit = 0.05 if args.no_max_tokens else 1.0
    return args


def main_no_max_tokens(args: argparse.Namespace) -> None:
    from _verbose_attack import attack

    figures = asyncio.run(attack(args.store, args.callers, args.limit))
    print(
        f"{args.store}: {args.callers} callers without max_tokens, models writing 10x, "
        f"against ${args.limit:g}"
    )
    print(f"  committed       ${figures['committed_usd']:.9f} (overspend ${figures['overspend_usd']:.9f})")
    print(f"  calls           {figures['calls']} ({figures['calls_cut_at_cap']} cut at their cap)")
    print(f"  caps sent       largest {figures['largest_cap_sent']}, uncapped {figures['uncapped_requests']}")
    print(
        f"  refusals        {figures['refusals']} "
        f"({figures['refused_with_room']} with room left for an answer)"
    )
    print(f"  lost            ${figures['lost_usd']:.9f}")
    if args.json:
        print(json.dumps(figures))
    failed = figures["overspend_usd"] > 0 or figures["lost_usd"] != 0 or figures["uncapped_requests"] != 0
    sys.exit(1 if failed else 0)


def main() -> None:
    args = parse_args()
    if args.no_max_tokens:
        main_no_max_tokens(args)
    figures = run(args)
    print(
        f"{args.store}: {args.processes} processes x {args.threads} threads against ${args.limit:g}"
        f"{' (one killed mid-way)' if figures['killed'] else ''}"
    )
    print(f"  committed       ${figures['committed_usd']:.9f} (overspend ${figures['overspend_usd']:.9f})")
    print(f"  refusals        {figures['refusals']}")
    print(f"  ops             {figures['ops']} reserve+commit pairs in {figures['seconds']} s")
    print(f"  ops_per_s       {figures['ops_per_s']:.0f}")
    print(f"  worker CPU      {figures['worker_cpu_us_per_op']:.0f} µs per pair")
    print(f"  lost            ${figures['lost_usd']:.9f}")
    if args.kill_one:
        print(f"  held by dead    ${figures['held_by_dead_usd']:.9f}")
        print(f"  dead expired    {figures['dead_reservations_expired']}")
    if figures["sqlite_integrity"] is not None:
        print(f"  integrity       {figures['sqlite_integrity']}")
    if args.json:
        print(json.dumps(figures))
    failed = (
        figures["overspend_usd"] > 0
        or figures["lost_usd"] != 0
        or (args.kill_one and figures["dead_reservations_expired"] is not True)
        or figures["sqlite_integrity"] not in (None, "ok")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
