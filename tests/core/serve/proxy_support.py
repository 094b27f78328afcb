"""`gearshift serve` as a real process on 127.0.0.1, routing to the local model servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(
    folder: Path,
    openai_url: str,
    anthropic_url: str | None = None,
    *,
    budgets: str = "",
    name: str = "gearshift.toml",
    log: str = "decisions.db",
) -> Path:
    """A gearshift.toml: `small` (tier 1) and `large` (tier 2, taking `reasoning_effort`) on the local
    OpenAI server, and `claude-large` (tier 3) on the local Anthropic server when given; decisions
    logged to SQLite."""
    lines = [
        "[providers.local]",
        'kind = "openai"',
        f'base_url = "{openai_url}"',
        "require_key = false",
        "timeout = 10",
        "",
    ]
    if anthropic_url:
        lines += [
            "[providers.claude]",
            'kind = "anthropic"',
            f'base_url = "{anthropic_url}"',
            'api_key_env = "GEARSHIFT_TEST_ANTHROPIC_KEY"',
            "",
        ]
    lines += [
        "[[models]]",
        'id = "small"',
        'provider = "local"',
        'model = "small"',
        "tier = 1",
        "prices = { input = 1.0, output = 4.0 }",
        "supports_vision = true",
        "",
        "[[models]]",
        'id = "large"',
        'provider = "local"',
        'model = "large"',
        "tier = 2",
        "prices = { input = 10.0, output = 40.0 }",
        "supports_vision = true",
        "reasoning = true",
        "",
    ]
    if anthropic_url:
        lines += [
            "[[models]]",
            'id = "claude-large"',
            'provider = "claude"',
            'model = "claude-large"',
            "tier = 3",
            "prices = { input = 15.0, output = 75.0 }",
            "",
        ]
    lines += ["[log]", f'path = "{folder / log}"', "", budgets]
    path = folder / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class ProxyProcess:
    """`gearshift serve --config CONFIG` on a free loopback port; stops on `close()` or `with`."""

    def __init__(
        self,
        config: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 60.0,
        wait: bool = True,
    ) -> None:
        self.port = free_port()
        self.host = host
        command: Sequence[str] = (
            sys.executable, "-m", "gearshift.cli", "serve", "--config", str(config),
            "--host", host, "--port", str(self.port), *args,
        )  # fmt: skip
        environment = {**os.environ, "GEARSHIFT_TEST_ANTHROPIC_KEY": "sk-ant-local", **(env or {})}
        self.process = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._start_timeout = start_timeout
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Block until the process answers `/health` (start several, then wait for each)."""
        deadline = time.monotonic() + self._start_timeout
        while True:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise RuntimeError(f"gearshift serve exited with {self.process.returncode}: {err}{out}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("gearshift serve did not answer /health in time")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI SDK's base URL: `<url>/v1`."""
        return f"{self.url}/v1"

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> str:
        """Stop the process (SIGTERM, then SIGKILL) and return what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        _, err = self.process.communicate()
        return err

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
