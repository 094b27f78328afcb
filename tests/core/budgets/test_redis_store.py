"""RedisStore beyond the contract, against real `redis-server`s on 127.0.0.1: errors, secrets, loops."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio

from gearshift._errors import ConfigError, LedgerUnavailable
from gearshift.budgets import LimitCheck, UsageQuery, open_store
from gearshift.budgets import _redis as redis_module
from gearshift.budgets._redis import RedisStore
from gearshift.testing._redis import LocalRedisServer

NOW = 1_700_000_000.0
PASSWORD = "s3cret-ledger-pw-81f2"


def fresh_prefix() -> str:
    return f"gearshift-test-{uuid.uuid4().hex}:"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe is closed


@pytest.fixture(scope="module")
def guarded_server(redis_server: LocalRedisServer) -> Iterator[LocalRedisServer]:
    """A second server, wanting a password (asking for `redis_server` skips or fails as it does)."""
    with LocalRedisServer(password=PASSWORD) as server:
        yield server


async def test_an_unreachable_server_is_ledger_unavailable_without_the_password() -> None:
    port = closed_port()
    store = RedisStore(f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    with pytest.raises(LedgerUnavailable) as caught:
        await store.reserve("r1", ["k"], 0.1, 0, [], now=NOW, expires_at=NOW + 60)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value)
    assert PASSWORD not in caught.value.url
    for call in (store.usage([UsageQuery("k", 0.0)], now=NOW), store.keys(), store.release("r1")):
        with pytest.raises(LedgerUnavailable):
            await call
    await store.aclose()


async def test_a_wrong_password_is_ledger_unavailable_without_either_password(
    guarded_server: LocalRedisServer,
) -> None:
    wrong = "not-the-password-7d1c"
    store = RedisStore(f"redis://:{wrong}@127.0.0.1:{guarded_server.port}/0", prefix=fresh_prefix())
    with pytest.raises(LedgerUnavailable) as caught:
        await store.commit("c1", ["k"], 0.1, 0, now=NOW)
    assert wrong not in str(caught.value) and PASSWORD not in str(caught.value)
    await store.aclose()


async def test_the_right_password_works_and_never_shows(guarded_server: LocalRedisServer) -> None:
    store = RedisStore(guarded_server.url, prefix=fresh_prefix())
    try:
        await store.commit("c1", ["k"], 0.1, 5, now=NOW)
        (usage,) = await store.usage([UsageQuery("k", 0.0)], now=NOW)
        assert (usage.spent_usd, usage.spent_tokens) == (0.1, 5)
        assert PASSWORD not in store.url and PASSWORD not in repr(store)
        assert store.url.startswith("redis://") and f"127.0.0.1:{guarded_server.port}/0" in store.url
    finally:
        await store.aclose()


async def test_a_server_that_stops_answering_is_an_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch, redis_server: LocalRedisServer
) -> None:
    monkeypatch.setattr(redis_module, "_ANSWER_TIMEOUT", 0.3)
    with LocalRedisServer() as server:  # its own server (the session's is not to be stopped)
        store = RedisStore(server.url, prefix=fresh_prefix())
        await store.keys()  # connected while the server still answered
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(LedgerUnavailable, match="TimeoutError"):
                await store.reserve("r1", ["k"], 0.1, 0, [], now=NOW, expires_at=NOW + 60)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # The late answer to the abandoned call must not be read as the answer to the next one.
        await store.commit("c1", ["k"], 0.25, 0, now=NOW)
        (usage,) = await store.usage([UsageQuery("k", 0.0)], now=NOW)
        assert usage.spent_usd == 0.25
        assert usage.reserved_usd in (0.0, 0.1)  # the abandoned reserve ran whole, or not at all
        await store.aclose()


@pytest.mark.parametrize(
    ("options", "forgets", "warned"),
    [
        ((), True, True),
        (("--appendonly", "yes"), False, False),
        (("--save", "3600 1"), False, False),  # RDB snapshots: kept (up to the last one)
        (("--rename-command", "CONFIG", ""), True, False),  # as managed Redis: cannot be read, no noise
    ],
    ids=["no-persistence", "appendonly", "rdb", "config-disabled"],
)
async def test_a_server_that_forgets_spend_on_restart_is_named_once_at_connect(
    redis_server: LocalRedisServer,  # asked for so the test skips (or fails in CI) without redis-server
    caplog: pytest.LogCaptureFixture,
    options: tuple[str, ...],
    forgets: bool,
    warned: bool,
) -> None:
    # A Redis without persistence forgot every recorded spend on a restart ($2 -> $0) and every budget
    # started over, and nothing said so; the README's advice was the only warning.
    caplog.set_level(logging.DEBUG, logger="gearshift.budgets")
    with LocalRedisServer(password=PASSWORD, options=options) as server:
        store = RedisStore(server.url, prefix=fresh_prefix())
        try:
            await store.commit("c1", ["agent:a"], 2.0, 0, now=NOW)
            server.restart()
            (usage,) = await store.usage([UsageQuery("agent:a", 0.0)], now=NOW)  # connects again
            assert usage.spent_usd == (0.0 if forgets else 2.0)
        finally:
            await store.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if not warned:
        assert warnings == []
        return
    (warning,) = warnings  # one, though the store connected twice
    assert (
        f"the Redis ledger redis://:***@127.0.0.1:{server.port}/0 keeps no data across a restart" in warning
    )
    assert "every spend it records will be lost when the server restarts" in warning
    assert "CONFIG SET appendonly yes" in warning and PASSWORD not in warning


async def test_ledgers_under_different_prefixes_do_not_see_each_other(redis_server: LocalRedisServer) -> None:
    first, second = fresh_prefix(), fresh_prefix()
    a, b, a_again = (RedisStore(redis_server.url, prefix=p) for p in (first, second, first))
    try:
        await a.commit("c1", ["k"], 0.7, 0, now=NOW)
        await b.commit("c1", ["k"], 0.2, 0, now=NOW)  # same id, other ledger: recorded too
        await b.reset("k")
        (seen_by_a,) = await a_again.usage([UsageQuery("k", 0.0)], now=NOW)
        (seen_by_b,) = await b.usage([UsageQuery("k", 0.0)], now=NOW)
        assert (seen_by_a.spent_usd, seen_by_b.spent_usd) == (0.7, 0.0)
        assert a.prefix == first
    finally:
        for store in (a, b, a_again):
            await store.aclose()


async def test_scripts_are_loaded_again_after_a_script_flush(redis_server: LocalRedisServer) -> None:
    store = RedisStore(redis_server.url, prefix=fresh_prefix())
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await store.commit("c1", ["k"], 0.1, 0, now=NOW)
        await raw.script_flush()  # e.g. a restarted server, or a failover to a replica
        await store.commit("c2", ["k"], 0.1, 0, now=NOW)
        (usage,) = await store.usage([UsageQuery("k", 0.0)], now=NOW)
        assert usage.spent_usd == 0.2
    finally:
        await raw.aclose()
        await store.aclose()


async def test_one_store_serves_several_event_loops(redis_server: LocalRedisServer) -> None:
    """A redis.asyncio client belongs to one loop; the store keeps one per loop (here: another thread's)."""
    store = RedisStore(redis_server.url, prefix=fresh_prefix())
    cap = [LimitCheck("cap", "k", 0.0, 1.0, None, True)]
    errors: list[BaseException] = []

    def in_another_loop() -> None:
        try:
            asyncio.run(store.commit("from-thread", ["k"], 0.25, 0, now=NOW))
        except BaseException as exc:
            errors.append(exc)

    await store.commit("from-here", ["k"], 0.25, 0, now=NOW)
    thread = threading.Thread(target=in_another_loop)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert errors == []
    result = await store.reserve("r", ["k"], 0.5, 0, cap, now=NOW, expires_at=NOW + 60)
    assert result.ok and result.usage[0].spent_usd == 0.5
    await store.aclose()


async def test_open_store_names_the_install_command_when_redis_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # what an environment without the extra looks like
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'gearshift\[redis\]'"):
        RedisStore("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match=r"pip install 'gearshift\[redis\]'"):
        open_store("redis://127.0.0.1:6379/0", source="gearshift.toml")
