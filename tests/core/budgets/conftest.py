"""Budget stores under test: every store in `STORE_FACTORIES` runs the contract suite.

A factory is an async function given the test's `pytest.FixtureRequest` (so it can ask for
`tmp_path` or a server fixture with `request.getfixturevalue(...)`) and returning a fresh, empty
store. The `store` fixture closes it after the test. Add a store by appending one
`(id, factory)` pair to the list; the `store` fixture below is parametrized over all of them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from gearshift.budgets import BudgetStore, MemoryStore
from gearshift.config._data_dir import HOME_ENV
from gearshift.testing._redis import LocalRedisServer, RedisServerMissing

StoreFactory = Callable[[pytest.FixtureRequest], Awaitable[BudgetStore]]


async def _memory(request: pytest.FixtureRequest) -> BudgetStore:
    return MemoryStore()


async def _sqlite(request: pytest.FixtureRequest) -> BudgetStore:
    from gearshift.budgets._sqlite import SQLiteStore

    folder = request.getfixturevalue("tmp_path") / "ledger"
    folder.mkdir()
    return SQLiteStore(folder / "budgets.db")


async def _redis(request: pytest.FixtureRequest) -> BudgetStore:
    from gearshift.budgets._redis import RedisStore

    server: LocalRedisServer = request.getfixturevalue("redis_server")
    # One server for the session; a prefix of its own makes each test's store fresh and empty.
    return RedisStore(server.url, prefix=f"gearshift-test-{uuid.uuid4().hex}:")


STORE_FACTORIES: list[tuple[str, StoreFactory]] = [
    ("memory", _memory),
    ("sqlite", _sqlite),
    ("redis", _redis),
]
"""(id, factory) of every store the contract suite runs against."""


@pytest.fixture(autouse=True)
def _private_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """gearshift's data folder (where journals of non-SQLite stores go) is the test's own.

    `$GEARSHIFT_HOME`, not `XDG_DATA_HOME`: the suite sets the former for the whole session
    (tests/conftest.py), and it wins over the platform's folder, so the latter moved nothing.
    """
    monkeypatch.setenv(HOME_ENV, str(tmp_path_factory.mktemp("data")))


@pytest.fixture(params=[factory for _, factory in STORE_FACTORIES], ids=[i for i, _ in STORE_FACTORIES])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BudgetStore]:
    """A fresh, empty store of each kind in `STORE_FACTORIES`; closed after the test."""
    made = await request.param(request)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedisServer]:
    """A real `redis-server` on a free 127.0.0.1 port, no persistence, for the whole session.

    Without the binary the Redis tests skip, except in CI (`CI` set), where `.ci/run` installs it
    and a missing server must fail rather than quietly skip the Redis store.
    """
    try:
        server = LocalRedisServer()
    except RedisServerMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the Redis store: {exc}")
        pytest.skip(f"the Redis store is not tested here: {exc}")
    with server:
        yield server
