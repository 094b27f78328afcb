"""`Router.close()`, the sync bridge's close, closes the budget ledger as `aclose()` does: the SQLite
file and the Redis connections a sync caller's calls opened do not outlive the router.

Real parts: the router answers through the real SDK from a local server, the ledger is a SQLite file
or a real `redis-server` on loopback, and what is still open is read from the operating system
(this process's file descriptors) and from the Redis server (`CLIENT LIST`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer, StepContext
from gearshift.budgets import BudgetLedger, BudgetLimit
from gearshift.budgets._redis import RedisStore
from gearshift.budgets._sqlite import SQLiteStore
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer
from gearshift.testing._redis import LocalRedisServer

REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="local", model="small", tier=1, prices=ModelPrices(input=1.0, output=4.0)
        )
    ]
)


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small",)) as local:
        yield local


def _router(server: LocalOpenAIServer, ledger: BudgetLedger) -> Router:
    provider = OpenAIProvider(name="local", api_key="sk-t", base_url=server.base_url, timeout=10.0)
    return Router(REGISTRY, policy=SignalScorer(), providers=[provider], budgets=ledger)


def _open_files_under(folder: Path) -> list[str]:
    """The files under `folder` this process holds open (Linux: /proc/self/fd)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc/self/fd")
def test_a_sync_close_closes_a_sqlite_ledgers_file(server: LocalOpenAIServer, tmp_path: Path) -> None:
    ledger = BudgetLedger(SQLiteStore(tmp_path / "budgets.db"), [BudgetLimit(key="run:*", usd=1.0)])
    router = _router(server, ledger)
    answer = router.complete("hello there", StepContext(run_id="1"))
    assert answer.cost_usd > 0 and _open_files_under(tmp_path)  # the ledger file is open
    router.close()
    assert _open_files_under(tmp_path) == []


def _redis_clients(port: int) -> set[int]:
    """The ids of the clients connected to the Redis server on `port`, but for the one asking."""
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as asker:
        asker.sendall(b"CLIENT ID\r\nCLIENT LIST\r\n")
        data = b""
        while not (data.count(b"\r\n") >= 3 and data.endswith(b"\r\n")):
            data += asker.recv(65536)
    first, _, rest = data.partition(b"\r\n")
    mine = int(first.removeprefix(b":"))
    listing = rest.partition(b"\r\n")[2].decode()
    ids = {int(part.removeprefix("id=")) for part in listing.split() if part.startswith("id=")}
    return ids - {mine}


def test_a_sync_close_closes_a_redis_ledgers_connections(
    server: LocalOpenAIServer, redis_server: LocalRedisServer
) -> None:
    before = _redis_clients(redis_server.port)
    store = RedisStore(redis_server.url, prefix=f"gearshift-close-{os.getpid()}-{time.time_ns()}:")
    router = _router(server, BudgetLedger(store, [BudgetLimit(key="run:*", usd=1.0)]))
    assert router.complete("hello there", StepContext(run_id="1")).cost_usd > 0
    assert _redis_clients(redis_server.port) - before  # the ledger's connection
    router.close()
    for _ in range(100):  # the server reads the closed connection's end
        if not _redis_clients(redis_server.port) - before:
            break
        time.sleep(0.02)
    assert _redis_clients(redis_server.port) - before == set()
