"""One Redis server as seen from this process: one connection, one thread, every step batched.

Every `RedisStore` of a process that names the same URL shares one `RedisWriter`: a thread owning one
(blocking) connection. Steps that queue up while it waits for the server go together in one call of
the `BATCH` script, which runs each step whole, one after the other: the batch shares one round trip
and one script call, never a check. This is what makes the ledger fast with many threads and event
loops in a process: each step costs its caller a queue put and a wake-up, not a client round trip
(a `redis.asyncio` call per step cost more CPU than the script itself).

The event loops never wait on the socket: a step's answer reaches its caller's loop through
`call_soon_threadsafe`. A child forked after the thread started gets a writer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._redis_scripts import BATCH

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisWriter", "StepFailed", "open_writer"]

_CONNECT_TIMEOUT = 5.0  # seconds; a URL's own socket_connect_timeout= wins
_ANSWER_TIMEOUT = 10.0  # seconds for the server to answer a batch
_RETRIES = 2  # after a dropped connection; every step is safe to run twice (ids make them idempotent)
_BATCH = 256  # most steps one script call takes
_SHA = hashlib.sha1(BATCH.encode("utf-8"), usedforsecurity=False).hexdigest()

_writers: dict[str, RedisWriter] = {}
_writers_lock = threading.Lock()


class StepFailed(Exception):
    """The script ran, and one step of it failed (the server's message); the other steps stood."""


def open_writer(url: str, answer_timeout: float) -> RedisWriter:
    """This process's `RedisWriter` for `url`, shared by every store that opens it; `close` it."""
    with _writers_lock:
        writer = _writers.get(url)
        if writer is None or not writer.serving:
            writer = _writers[url] = RedisWriter(url, answer_timeout)
        writer.users += 1
        return writer


@dataclass(eq=False, slots=True)
class _Step:
    op: str
    prefix: str
    args: list[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = field(default=(False, None))


def _settle(future: asyncio.Future[Any], failed: bool, value: Any) -> None:
    if future.cancelled():
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


class RedisWriter:
    """The thread and connection of one Redis URL in this process (see the module docstring)."""

    def __init__(self, url: str, answer_timeout: float) -> None:
        self.url = url
        self.users = 0
        self.stopped = False
        self._pid = os.getpid()
        self._answer_timeout = answer_timeout
        self._steps: queue.SimpleQueue[_Step | None] = queue.SimpleQueue()
        self._client: Redis | None = None
        self._connection_: Any = None  # redis-py's Connection (its methods are untyped)
        self._thread = threading.Thread(target=self._serve, name="gearshift-ledger:redis", daemon=True)
        self._thread.start()

    @property
    def serving(self) -> bool:
        """Whether the thread takes steps: not after `close`, nor in a child forked after it started."""
        return not self.stopped and self._pid == os.getpid()

    async def run(self, op: str, prefix: str, args: list[Any]) -> Any:
        """Run one step of the `BATCH` script (`op` with `args`, keys under `prefix`); its answer.

        Raises what the connection raised (redis-py's errors), or `StepFailed` for a step the server
        refused. The caller's `asyncio.timeout` may abandon the wait; the step may still run.
        """
        loop = asyncio.get_running_loop()
        step = _Step(op, prefix, args, loop, loop.create_future())
        self._steps.put(step)
        return await step.future

    async def close(self) -> None:
        """Drop one user; the last one stops the thread and closes the connection."""
        with _writers_lock:
            self.users -= 1
            if self.users > 0 or self.stopped:
                return
            self.stopped = True
        self._steps.put(None)
        await asyncio.to_thread(self._thread.join, 10)

    # -- the thread -----------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                first = self._steps.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < _BATCH:
                    try:
                        step = self._steps.get_nowait()
                    except queue.Empty:
                        break
                    if step is None:
                        stop = True
                        break
                    batch.append(step)
                self._run(batch)
                if stop:
                    return
        finally:
            if self._connection_ is not None:
                with contextlib.suppress(Exception):
                    self._connection_.disconnect()
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()

    def _run(self, batch: list[_Step]) -> None:
        steps = json.dumps([[s.op, s.prefix, s.args] for s in batch], separators=(",", ":"))
        try:
            answers = self._call(steps.encode("utf-8"))
        except Exception as exc:  # the connection's fault: every step of the batch hears it
            for step in batch:
                step.outcome = (True, exc)
        else:
            for step, answer in zip(batch, answers, strict=True):
                if isinstance(answer, list) and len(answer) == 2 and answer[0] == "!":
                    step.outcome = (True, StepFailed(str(answer[1])))
                else:
                    step.outcome = (False, answer)
        for step in batch:
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody to tell
                step.loop.call_soon_threadsafe(_settle, step.future, *step.outcome)

    def _call(self, steps: bytes) -> list[Any]:
        """One EVALSHA of the batch script; its answers (one JSON text, decoded)."""
        from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

        attempt = 0
        while True:
            connection = self._connection()
            try:
                # Packed by hand: redis-py's packing and reply parsing cost more than the script.
                # The wall clock goes with the steps: the script moves times by the server's clock.
                connection.send_packed_command(
                    [_evalsha(repr(time.time()).encode(), steps)], check_health=False
                )
                try:
                    reply = connection.read_response()
                except NoScriptError:  # a new or restarted server: load once, then go on by SHA
                    connection.send_command("SCRIPT", "LOAD", BATCH, check_health=False)
                    connection.read_response()
                    continue
            except (ConnectionError, TimeoutError, OSError):
                connection.disconnect()  # a late answer must never be read as the next batch's
                if attempt >= _RETRIES:
                    raise
                attempt += 1
                time.sleep(min(0.2, 0.01 * 2**attempt))
                continue
            answers = json.loads(reply)
            return answers if isinstance(answers, list) else []  # Lua's empty table is `{}`

    def _connection(self) -> Any:
        if self._connection_ is None:
            from redis import Redis

            client = Redis.from_url(
                self.url, socket_connect_timeout=_CONNECT_TIMEOUT, socket_timeout=self._answer_timeout
            )
            self._client = client
            self._connection_ = client.connection_pool.get_connection()
        return self._connection_


def _evalsha(wall: bytes, steps: bytes) -> bytes:
    """`EVALSHA <sha> 0 <wall> <steps>` in Redis's wire protocol."""
    return b"".join(
        (
            _EVALSHA_HEAD,
            b"$%d\r\n" % len(wall),
            wall,
            b"\r\n$%d\r\n" % len(steps),
            steps,
            b"\r\n",
        )
    )


_EVALSHA_HEAD = b"*5\r\n$7\r\nEVALSHA\r\n$40\r\n" + _SHA.encode() + b"\r\n$1\r\n0\r\n"
