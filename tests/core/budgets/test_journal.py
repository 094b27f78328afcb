"""Spend that is never lost: commits the store cannot take go to the journal and are replayed.

Faults are real: a SQLite file another connection keeps locked, a `redis-server` killed with SIGKILL
and started again, a caller process killed with SIGKILL mid-call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import gearshift as gs
from gearshift._errors import LedgerUnavailable
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore, UsageQuery
from gearshift.budgets._journal import JournaledSpend, SpendJournal
from gearshift.budgets._redis import RedisStore
from gearshift.budgets._sqlite import SQLiteStore
from gearshift.providers import OpenAIProvider
from gearshift.testing import Delay, LocalOpenAIServer
from gearshift.testing._redis import LocalRedisServer

KEYS = ("agent:a", "run:1")
LIMIT = BudgetLimit(key="run:*", usd=1.0)


@pytest.fixture
def locked_ledger_file(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A ledger file, and a connection that can take its write lock (`BEGIN IMMEDIATE`) as another
    process would."""
    path = tmp_path / "budgets.db"
    other = sqlite3.connect(path, isolation_level=None)
    try:
        yield path, other
    finally:
        other.close()


@pytest.fixture
async def ledger_on_own_redis(
    redis_server: LocalRedisServer,  # asked for so the test skips (or fails in CI) without redis-server
) -> AsyncIterator[tuple[LocalRedisServer, BudgetLedger]]:
    """A ledger on a `redis-server` of its own, for the test to kill (`kill_now`) and restart."""
    with LocalRedisServer() as server:
        store = RedisStore(server.url, prefix=f"gearshift-test-{uuid.uuid4().hex}:")
        ledger = BudgetLedger(store, [LIMIT], reservation_ttl=60)
        try:
            yield server, ledger
        finally:
            await ledger.aclose()


def kill_now(server: LocalRedisServer) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)


async def spent_and_held(ledger: BudgetLedger, key: str = "run:1") -> tuple[float, float]:
    (usage,) = await ledger.usage([key])
    return round(usage.spent_usd, 9), round(usage.reserved_usd, 9)


async def test_a_commit_on_a_locked_sqlite_ledger_is_journaled_then_replayed_once(
    locked_ledger_file: tuple[Path, sqlite3.Connection],
) -> None:
    path, other = locked_ledger_file
    ledger = BudgetLedger(SQLiteStore(path, busy_timeout=0.2), [LIMIT], reservation_ttl=60)
    try:
        first = await ledger.reserve(KEYS, usd=0.5, tokens=100)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the timeout
        await ledger.commit(first, usd=0.4, tokens=90)  # no LedgerUnavailable: the answer is kept
        assert ledger.journal.path == path.with_name("budgets.db.pending-spend.jsonl")
        (kept,) = await ledger.journaled()
        assert (kept.reservation_id, kept.keys, kept.usd, kept.tokens) == (first.id, KEYS, 0.4, 90)
        other.execute("COMMIT")

        second = await ledger.reserve(KEYS, usd=0.1, tokens=0)  # the store answers: replayed first
        assert await ledger.journaled() == ()
        assert await spent_and_held(ledger) == (0.4, 0.1)  # the first reservation was settled too
        await ledger.commit(second, usd=0.1, tokens=0)

        await asyncio.to_thread(ledger.journal.append, kept)  # as if a replay died before forgetting
        assert await ledger.replay_journal() == 1
        assert await spent_and_held(ledger) == (0.5, 0.0)  # recorded once, however often replayed
    finally:
        await ledger.aclose()


async def test_a_commit_while_redis_is_killed_is_journaled_and_replayed_when_it_is_back(
    ledger_on_own_redis: tuple[LocalRedisServer, BudgetLedger],
) -> None:
    server, ledger = ledger_on_own_redis
    reservation = await ledger.reserve(KEYS, usd=0.3, tokens=10)
    kill_now(server)  # mid-call: the provider answers, the ledger is gone
    await ledger.commit(reservation, usd=0.25, tokens=8)
    assert [spend.usd for spend in await ledger.journaled()] == [0.25]
    with pytest.raises(LedgerUnavailable):
        await ledger.replay_journal()  # still down: the spend stays in the journal
    assert len(await ledger.journaled()) == 1

    server.restart()  # back, and empty (no persistence): the journal is all there is
    probe = await ledger.reserve(("agent:b",), usd=0.0, tokens=0)
    assert await ledger.journaled() == ()
    assert await spent_and_held(ledger) == (0.25, 0.0)
    (agent,) = await ledger.usage(["agent:a"])
    assert (round(agent.spent_usd, 9), agent.spent_tokens) == (0.25, 8)
    await ledger.release(probe)  # settled: the ledger's close need not wait 5 s for it


async def test_spend_journaled_while_redis_was_down_counts_against_the_first_call_once_it_is_back(
    ledger_on_own_redis: tuple[LocalRedisServer, BudgetLedger],
) -> None:
    # A call made while Redis was down put the replay off for 10 s, and the calls of those 10 s were
    # checked against a total without the journaled spend: $0.60 more passed a $1 hard limit.
    server, ledger = ledger_on_own_redis
    reservation = await ledger.reserve(KEYS, usd=0.5, tokens=10)
    kill_now(server)
    await ledger.commit(reservation, usd=0.5, tokens=10)  # journaled
    with pytest.raises(LedgerUnavailable):
        await ledger.reserve(KEYS, usd=0.1, tokens=0)  # a call while it is down is refused

    server.restart()  # back at once, and empty: the journal holds the $0.50
    with pytest.raises(gs.BudgetExceeded) as refused:
        await ledger.reserve(KEYS, usd=0.6, tokens=0)
    assert (refused.value.spent, refused.value.requested) == (0.5, 0.6)
    assert await ledger.journaled() == ()
    assert await spent_and_held(ledger) == (0.5, 0.0)


async def test_the_router_hands_over_a_paid_answer_when_redis_dies_during_the_call(
    redis_server: LocalRedisServer,  # asked for so the test skips (or fails in CI) without redis-server
) -> None:
    registry = gs.ModelRegistry(
        [
            gs.ModelSpec(
                id="small",
                provider="local",
                model="small",
                tier=1,
                prices=gs.ModelPrices(input=1.0, output=4.0),
            )
        ]
    )
    with LocalRedisServer() as ledger_server, LocalOpenAIServer(models=("small",)) as model_server:
        ledger = BudgetLedger(RedisStore(ledger_server.url), [LIMIT], reservation_ttl=60)
        provider = OpenAIProvider(name="local", api_key="sk-test", base_url=model_server.base_url, timeout=10)
        router = gs.Router(registry, policy=gs.SignalScorer(), providers=[provider], budgets=ledger)
        model_server.script("small", Delay(0.5))
        request = gs.ChatRequest(messages=(gs.Message.user("What is the capital of France?"),), max_tokens=32)

        async def kill_the_ledger_mid_call() -> None:
            # The reservation is made and the model is answering (the server records, never signals).
            while not model_server.requests:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            kill_now(ledger_server)

        try:
            killer = asyncio.create_task(kill_the_ledger_mid_call())
            routed = await router.acomplete(request, gs.StepContext(agent_id="a", run_id="1"))
            await killer
            response = routed.response
            assert response.text  # the caller has the answer it paid for
            (kept,) = await ledger.journaled()
            assert kept.usd == pytest.approx(response.cost_usd) and set(kept.keys) >= {"agent:a", "run:1"}

            ledger_server.restart()
            await router.acomplete(request, gs.StepContext(agent_id="a", run_id="1"))  # replays first
            assert await ledger.journaled() == ()
            (run,) = await ledger.usage(["run:1"])
            assert run.spent_usd == pytest.approx(2 * (response.cost_usd or 0.0))
        finally:
            await router.aclose()


async def test_when_the_journal_cannot_be_written_either_the_commit_is_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-folder"
    blocker.mkdir()
    journal = blocker / "pending-spend.jsonl"
    port = _closed_port()
    store = RedisStore(f"redis://:pw-7c1@127.0.0.1:{port}/0")
    reservation = await BudgetLedger(MemoryStore(), journal=tmp_path / "j.jsonl").reserve(
        KEYS, usd=0.1, tokens=0
    )
    refusing = BudgetLedger(store, journal=journal)
    lenient = BudgetLedger(store, journal=journal, fail_open=True)
    blocker.rmdir()
    blocker.write_text("not a folder")  # the journal's folder became a file: nothing can be written there
    with pytest.raises(LedgerUnavailable) as caught:
        await refusing.commit(reservation, usd=0.1, tokens=0)
    assert "could not be journaled" in str(caught.value) and str(journal) in str(caught.value)
    assert "pw-7c1" not in str(caught.value)

    with caplog.at_level(logging.WARNING, logger="gearshift.budgets"):
        await lenient.commit(reservation, usd=0.1, tokens=0)
    assert "budget commit went unrecorded (fail_open)" in caplog.text and "pw-7c1" not in caplog.text
    await store.aclose()


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    journal = SpendJournal(tmp_path / "pending-spend.jsonl")
    kept = JournaledSpend("r1", ("agent:a",), 0.5, 10, 1_700_000_000.0)
    journal.append(kept)
    with journal.path.open("a", encoding="utf-8") as file:
        file.write('{"id":"r2","keys":["agent:a"],"usd":0.')  # the write a kill -9 cut off
        file.write("\n" + '{"id":"r3","keys":["a"],"usd":-1,"tokens":0,"at":1}' + "\n")  # bad amount
    assert journal.pending() == (kept,)
    journal.forget(["r1"])
    assert journal.pending() == () and not journal.maybe_pending()


CRASHING_CALLER = textwrap.dedent(
    """
    import asyncio, sqlite3, sys
    from gearshift.budgets import BudgetLedger, BudgetLimit
    from gearshift.budgets._sqlite import SQLiteStore

    path = sys.argv[1]

    async def main():
        ledger = BudgetLedger(
            SQLiteStore(path, busy_timeout=0.2), [BudgetLimit(key="run:*", usd=1.0)], reservation_ttl=30
        )
        keys = ("agent:a", "run:1")
        held = [await ledger.reserve(keys, usd=0.2, tokens=10) for _ in range(4)]
        await ledger.commit(held[0], usd=0.1, tokens=5)  # into the store
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the ledger stays locked from here on
        await ledger.commit(held[1], usd=0.1, tokens=5)  # into the journal
        await ledger.commit(held[2], usd=0.1, tokens=5)  # into the journal
        print(f"in flight {held[3].expires_at!r}", flush=True)
        await asyncio.sleep(60)  # the model call answers, but the process is killed first

    asyncio.run(main())
    """
)


async def test_a_process_killed_mid_call_loses_only_the_call_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"
    caller = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_CALLER, str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert caller.stdout is not None and caller.stderr is not None
        line = (await asyncio.wait_for(caller.stdout.readline(), 60)).decode()
        assert line.startswith("in flight "), line + (await caller.stderr.read()).decode()
        caller.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(caller.wait(), 10) == -signal.SIGKILL
    finally:
        if caller.returncode is None:
            caller.kill()
            await caller.wait()
    expires_at = float(line.split()[2])

    ledger = BudgetLedger(SQLiteStore(path), [LIMIT], reservation_ttl=30)  # the restarted process
    try:
        assert len(await ledger.journaled()) == 2
        assert await ledger.replay_journal() == 2
        (usage,) = await ledger.store.usage([UsageQuery("run:1", 0.0)], now=time.time())
        # Three commits of $0.10, from the store and the journal alike; the call in flight holds its
        # $0.20 until its reservation lapses (its heartbeat died with it), then nothing.
        assert (round(usage.spent_usd, 9), usage.spent_tokens) == (0.3, 15)
        assert round(usage.reserved_usd, 9) == 0.2
        (lapsed,) = await ledger.store.usage([UsageQuery("run:1", 0.0)], now=expires_at)
        assert (round(lapsed.spent_usd, 9), lapsed.reserved_usd) == (0.3, 0.0)
    finally:
        await ledger.aclose()


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
