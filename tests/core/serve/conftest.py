"""One pair of local model servers and one `gearshift serve` process per module: the proxy under
test is the real command, on 127.0.0.1, routing to `gearshift.testing`'s servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proxy_support import ProxyProcess, write_config

from gearshift import read_records
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer


@pytest.fixture(scope="module")
def model_servers() -> Iterator[tuple[LocalOpenAIServer, LocalAnthropicServer]]:
    with (
        LocalOpenAIServer(models=("small", "large")) as openai_server,
        LocalAnthropicServer(models=("claude-large",), api_key="sk-ant-local") as anthropic_server,
    ):
        yield openai_server, anthropic_server


@pytest.fixture(scope="module")
def proxy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def proxy(
    model_servers: tuple[LocalOpenAIServer, LocalAnthropicServer], proxy_dir: Path
) -> Iterator[ProxyProcess]:
    openai_server, anthropic_server = model_servers
    config = write_config(proxy_dir, openai_server.base_url, anthropic_server.url)
    with ProxyProcess(config, "--max-body-bytes", "200000") as process:
        yield process


@pytest.fixture
def openai_server(model_servers: tuple[LocalOpenAIServer, LocalAnthropicServer]) -> LocalOpenAIServer:
    return model_servers[0]


@pytest.fixture
def anthropic_server(model_servers: tuple[LocalOpenAIServer, LocalAnthropicServer]) -> LocalAnthropicServer:
    return model_servers[1]


@pytest.fixture
def records(proxy_dir: Path) -> Any:
    """Records of the proxy's decision log for one request id (decision, attempts, escalations)."""

    def of(request_id: str, *, kinds: tuple[str, ...] = ("decision", "attempt")) -> list[dict[str, Any]]:
        # The log is written by a background thread of the proxy process: wait for the records.
        deadline = time.monotonic() + 10
        while True:
            found = [r for r in read_records(proxy_dir / "decisions.db") if r["request_id"] == request_id]
            if {r["kind"] for r in found} >= set(kinds) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    return of
