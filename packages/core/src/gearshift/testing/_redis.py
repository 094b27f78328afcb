"""`LocalRedisServer`: a real `redis-server` on 127.0.0.1 for tests, examples and benchmarks.

It runs the binary Debian's `redis-server` package installs, on a free port, in a temporary folder,
with persistence off (no RDB snapshots, no append-only file) unless its `options` turn it on, and
stops it on `close()` or at the end of a `with` block. The budget ledger's Redis tests and the
contention benchmark share it.

```python
from gearshift.budgets._redis import RedisStore
from gearshift.testing import LocalRedisServer

with LocalRedisServer() as server:
    store = RedisStore(server.url)
```
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = ["LocalRedisServer", "RedisServerMissing", "find_redis_server"]

_INSTALL = "install it with: apt-get install redis-server (Debian/Ubuntu), or set REDIS_SERVER to its path"


class RedisServerMissing(RuntimeError):
    """No `redis-server` binary could be found; the message says how to install one."""


def find_redis_server() -> str | None:
    """The `redis-server` to run: `$REDIS_SERVER`, else the one on `PATH`, else Debian's path."""
    named = os.environ.get("REDIS_SERVER")
    if named:
        return named if Path(named).is_file() else None
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None


class LocalRedisServer:
    """A throwaway `redis-server` on 127.0.0.1: started on construction, stopped by `close()`.

    `password` sets `requirepass` (the URL then carries it). `options` are more `redis-server`
    arguments, after (and so over) the defaults: `("--appendonly", "yes")` for a server that keeps its
    data. `start_timeout` bounds the wait for the server to answer PING. Raises `RedisServerMissing`
    when there is no binary to run.
    """

    def __init__(
        self, *, password: str | None = None, options: Sequence[str] = (), start_timeout: float = 10.0
    ) -> None:
        binary = find_redis_server()
        if binary is None:
            raise RedisServerMissing(f"redis-server is not installed; {_INSTALL}")
        self._password = password
        self._options = tuple(options)
        self._binary = binary
        self._start_timeout = start_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="gearshift-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        try:
            # A port picked free may be taken before redis binds it: try a few.
            for _ in range(5):
                self._port = _free_port()
                self._process = self._spawn(binary)
                if self._wait_ready(start_timeout):
                    return
                self._stop_process()
            raise RuntimeError(f"redis-server did not start; its log: {self._log_tail()}")
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"LocalRedisServer(url={self.url_without_password!r})"

    @property
    def port(self) -> int:
        """The port the server listens on (127.0.0.1 only)."""
        return self._port

    @property
    def url(self) -> str:
        """`redis://[:password@]127.0.0.1:<port>/0`, the password percent-encoded."""
        auth = f":{quote(self._password, safe='')}@" if self._password else ""
        return f"redis://{auth}127.0.0.1:{self._port}/0"

    @property
    def url_without_password(self) -> str:
        """`url` with the password (if any) left out."""
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def restart(self) -> None:
        """Start the server again on the same port, e.g. after a test killed it; it starts empty
        (there is no persistence). Raises `RuntimeError` when it does not come back."""
        self._stop_process()
        self._process = self._spawn(self._binary)
        if not self._wait_ready(self._start_timeout):
            self._stop_process()
            raise RuntimeError(f"redis-server did not start again; its log: {self._log_tail()}")

    def close(self) -> None:
        """Stop the server and remove its folder. Idempotent."""
        self._stop_process()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalRedisServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _spawn(self, binary: str) -> subprocess.Popen[bytes]:
        args = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self._port),
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(self._dir / "redis.log"),
            *self._options,
        ]  # fmt: skip
        if self._password:
            # On the command line the password would show in `ps`: read it from a private file.
            config = self._dir / "redis.conf"
            config.touch(mode=0o600)
            # Every byte escaped, so that spaces, quotes and non-ASCII reach redis-server intact.
            escaped = "".join(f"\\x{byte:02x}" for byte in self._password.encode("utf-8"))
            config.write_text(f'requirepass "{escaped}"\n', encoding="utf-8")
            args.insert(1, str(config))
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            if self._answers_ping():
                return True
            time.sleep(0.01)
        return False

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self._port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(64)
        except OSError:
            return False
        # Without the password a server that requires one answers -NOAUTH: it is up all the same.
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self._dir / "redis.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
