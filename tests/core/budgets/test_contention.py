"""Many processes against one limit, and processes killed with SIGKILL: the limit holds, nothing is lost.

The contention run is the benchmark (`tests/benchmarks/budget_contention.py`) in a small form, run
as its own process (its workers are spawned processes); only its verdicts are asserted, never its
speed. The crash run
kills a process that holds a reservation mid-call, then opens the ledger again as a restarted
process would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearshift.budgets import BudgetStore, LimitCheck, UsageQuery
from gearshift.budgets._redis import RedisStore
from gearshift.budgets._sqlite import SQLiteStore
from gearshift.testing._redis import LocalRedisServer

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "budget_contention.py"
PROCESSES, THREADS, LIMIT = 3, 2, 0.05
MAX_CALL_USD = 0.001  # the benchmark's largest reservation


@pytest.fixture(params=["sqlite", "redis"])
def ledger_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(kind, where): a SQLite file path, or the session Redis server's URL."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "budgets.db")
    else:
        server: LocalRedisServer = request.getfixturevalue("redis_server")
        yield "redis", server.url


def open_store(kind: str, where: str, prefix: str) -> BudgetStore:
    return SQLiteStore(where) if kind == "sqlite" else RedisStore(where, prefix=prefix)


def test_processes_racing_for_one_limit_never_pass_it_even_when_one_is_killed(
    ledger_at: tuple[str, str],
) -> None:
    kind, where = ledger_at
    args = [sys.executable, str(BENCHMARK), "--store", kind, "--json", "--kill-one"]
    args += ["--processes", str(PROCESSES), "--threads", str(THREADS), "--limit", str(LIMIT)]
    env = dict(os.environ)
    if kind == "redis":
        env["REDIS_URL"] = where  # the session's server (under a fresh prefix), not one of its own
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])

    assert figures["overspend_usd"] == 0.0
    assert figures["committed_usd"] <= LIMIT
    assert figures["lost_usd"] == 0.0  # shared total == sum of per-process totals == what each reported
    assert figures["killed"] is True
    assert figures["dead_reservations_expired"] is True
    # Every surviving thread stops at its first refusal; the killed process's threads never get one.
    assert figures["refusals"] == (PROCESSES - 1) * THREADS
    # A refusal means spend + everything held + the request passed the limit, and at most one
    # reservation per thread was held then: so spend got within that much of the limit.
    assert figures["committed_usd"] > LIMIT - PROCESSES * THREADS * MAX_CALL_USD
    if kind == "sqlite":
        assert figures["sqlite_integrity"] == "ok"


CRASHING_CALLER = textwrap.dedent(
    """
    import asyncio, sys, time
    from gearshift.budgets import LimitCheck
    from gearshift.budgets._redis import RedisStore
    from gearshift.budgets._sqlite import SQLiteStore

    kind, where, prefix, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    cap = [LimitCheck("cap", "agent:a", 0.0, 1.0, None, True)]

    async def main():
        store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where, prefix=prefix)
        for i in range(20):
            now = time.time()
            held = await store.reserve(f"c{i}", ["agent:a"], 0.02, 10, cap, now=now, expires_at=now + ttl)
            assert held.ok
            await store.commit(f"c{i}", ["agent:a"], 0.015, 10, now=now)
        now = time.time()
        held = await store.reserve("in-flight", ["agent:a"], 0.5, 100, cap, now=now, expires_at=now + ttl)
        assert held.ok
        print(f"reserved {now + ttl!r}", flush=True)
        await asyncio.sleep(60)  # the model call that never returns: the process is killed here

    asyncio.run(main())
    """
)


def run_and_kill_mid_call(kind: str, where: str, prefix: str, ttl: float) -> float:
    """Start the crashing caller, SIGKILL it while its call is in flight; its reservation's expiry."""
    caller = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CALLER, kind, where, prefix, str(ttl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert caller.stdout is not None and caller.stderr is not None
        line = caller.stdout.readline()
        assert line.startswith("reserved "), line + caller.stderr.read()
        os.kill(caller.pid, signal.SIGKILL)
        assert caller.wait(timeout=10) == -signal.SIGKILL
        return float(line.split()[1])
    finally:
        caller.kill()
        caller.wait(timeout=10)


async def test_a_process_killed_mid_call_loses_no_spend_and_its_reservation_expires(
    ledger_at: tuple[str, str],
) -> None:
    kind, where = ledger_at
    prefix = f"gearshift-crash-{time.time_ns()}:"
    expires_at = await asyncio.to_thread(run_and_kill_mid_call, kind, where, prefix, 30.0)

    store = open_store(kind, where, prefix)  # the restart: a new process opens the same ledger
    try:
        (before,) = await store.usage([UsageQuery("agent:a", 0.0)], now=expires_at - 1)
        assert (round(before.spent_usd, 9), before.spent_tokens) == (0.3, 200)  # 20 x $0.015, intact
        assert (before.reserved_usd, before.reserved_tokens) == (0.5, 100)  # the dead call still holds
        cap = [LimitCheck("cap", "agent:a", 0.0, 1.0, None, True)]
        held = await store.reserve(
            "late", ["agent:a"], 0.3, 0, cap, now=expires_at - 1, expires_at=expires_at
        )
        assert not held.ok  # $0.30 spent + $0.50 held + $0.30 > $1: the limit still holds

        (after,) = await store.usage([UsageQuery("agent:a", 0.0)], now=expires_at)
        assert (round(after.spent_usd, 9), after.reserved_usd) == (0.3, 0.0)
        fits = await store.reserve(
            "next", ["agent:a"], 0.7, 0, cap, now=expires_at, expires_at=expires_at + 60
        )
        assert fits.ok  # expired: exactly the $0.70 left fits
    finally:
        await store.aclose()
