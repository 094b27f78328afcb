"""Both HTTP clients under both SDKs report a failed call by what happened, not by what the adapter named.

openai's aiohttp adapter turns every aiohttp connection error (refused, reset, hung up) into
`ConnectTimeout`, which the SDK raises as `APITimeoutError`; the router must still see a connection
failure (and its message must say where), and a real timeout must stay a timeout. Each server here is a
real socket on 127.0.0.1.
"""

from __future__ import annotations

import gc
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gearshift._errors import ConfigError, ProviderError
from gearshift._messages import ChatRequest, Message, StreamDone
from gearshift._models import ModelPrices, ModelSpec
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.providers._openai import OpenAIProvider
from gearshift.testing import Fail, LocalOpenAIServer

PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}
ALL = pytest.mark.parametrize(
    ("sdk", "http_client"), [(s, c) for s in sorted(PROVIDERS) for c in ("httpx", "aiohttp")]
)
BOTH_CALLS = pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
MODEL = ModelSpec(id="m", provider="p", model="m", tier=1, prices=ModelPrices(input=1.0, output=2.0))
ASK = ChatRequest(messages=(Message.user("hello"),))


def _serve(handle: str) -> Iterator[int]:
    """A listening socket whose connections are reset after the request (`reset`), closed without an
    answer (`hang_up`) or left unanswered (`silent`); yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def run() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            if handle == "reset":  # linger 0: close sends RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif handle == "hang_up":
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone does not
        listener.close()
        for conn in held:
            conn.close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def resetting_port() -> Iterator[int]:
    yield from _serve("reset")


@pytest.fixture
def hanging_up_port() -> Iterator[int]:
    yield from _serve("hang_up")


@pytest.fixture
def silent_port() -> Iterator[int]:
    yield from _serve("silent")


async def _failure(
    sdk: str, http_client: str, port: int, *, streamed: bool, timeout: float = 5.0
) -> ProviderError:
    base_url = f"http://127.0.0.1:{port}" + ("/v1" if sdk == "openai" else "")
    provider = PROVIDERS[sdk](
        "p", api_key="sk-transport-test", base_url=base_url, timeout=timeout, http_client=http_client
    )  # type: ignore[arg-type]
    try:
        with pytest.raises(ProviderError) as caught:
            if streamed:
                async for _ in provider.stream(MODEL, ASK):
                    pass
            else:
                await provider.complete(MODEL, ASK)
    finally:
        await provider.aclose()
    assert "sk-transport-test" not in str(caught.value)
    return caught.value


@ALL
@BOTH_CALLS
async def test_a_refused_connection_is_a_connection_failure(
    sdk: str, http_client: str, streamed: bool, closed_port: int
) -> None:
    error = await _failure(sdk, http_client, closed_port, streamed=streamed)
    assert error.kind == "connection"
    assert f"cannot connect to http://127.0.0.1:{closed_port}" in str(error)


@ALL
@BOTH_CALLS
async def test_a_reset_connection_is_a_connection_failure(
    sdk: str, http_client: str, streamed: bool, resetting_port: int
) -> None:
    assert (await _failure(sdk, http_client, resetting_port, streamed=streamed)).kind == "connection"


@ALL
async def test_a_server_that_hangs_up_is_a_connection_failure(
    sdk: str, http_client: str, hanging_up_port: int
) -> None:
    assert (await _failure(sdk, http_client, hanging_up_port, streamed=False)).kind == "connection"


@ALL
@BOTH_CALLS
async def test_a_server_that_never_answers_is_a_timeout(
    sdk: str, http_client: str, streamed: bool, silent_port: int
) -> None:
    assert (await _failure(sdk, http_client, silent_port, streamed=streamed, timeout=0.3)).kind == "timeout"


async def test_the_direct_aiohttp_path_sends_and_fails_as_the_sdk_does() -> None:
    """A plain call on aiohttp skips the SDK's request path: the same body and headers must reach the
    server, and each failure must read exactly as the SDK's own error does."""
    from openai import AsyncOpenAI

    request = ChatRequest(messages=(Message.user("hello"),), max_tokens=30, temperature=0.5)
    with LocalOpenAIServer(models=("m",), api_key="sk-local") as server:
        providers = {
            c: OpenAIProvider(api_key="sk-local", base_url=server.base_url, timeout=5.0, http_client=c)  # type: ignore[arg-type]
            for c in ("httpx", "aiohttp")
        }
        try:
            answers = [await providers[c].complete(MODEL, request) for c in ("httpx", "aiohttp")]
            sdk = AsyncOpenAI(api_key="sk-local", base_url=server.base_url, max_retries=0, timeout=5.0)
            await sdk.chat.completions.create(**providers["aiohttp"]._prepare(MODEL, request))
            await sdk.close()
            errors = []
            for fail in (Fail(status=404), Fail(status=429, retry_after=3.0), Fail(status=500)):
                for c in ("httpx", "aiohttp"):
                    server.script("m", fail)
                    with pytest.raises(ProviderError) as caught:
                        await providers[c].complete(MODEL, request)
                    errors.append((c, caught.value))
        finally:
            for provider in providers.values():
                await provider.aclose()
    assert (answers[0].text, answers[0].usage) == (answers[1].text, answers[1].usage)
    via_sdk, direct, created = server.requests[:3]
    assert direct.body == via_sdk.body == created.body
    transport = {"connection", "accept-encoding"}  # each HTTP client's own
    assert direct.headers.keys() - transport == via_sdk.headers.keys() - transport
    assert {k: v for k, v in direct.headers.items() if k not in transport} == {
        k: v for k, v in via_sdk.headers.items() if k not in transport
    }
    for (_, sdk_error), (_, direct_error) in zip(errors[::2], errors[1::2], strict=True):
        assert (direct_error.kind, direct_error.status_code, direct_error.retry_after, str(direct_error)) == (
            sdk_error.kind,
            sdk_error.status_code,
            sdk_error.retry_after,
            str(sdk_error),
        )


@pytest.mark.parametrize("http_client", ["httpx", "aiohttp"])
async def test_a_stream_is_requested_as_create_requests_it(http_client: str) -> None:
    from openai import AsyncOpenAI

    request = ChatRequest(messages=(Message.user("hello"),), max_tokens=30)
    with LocalOpenAIServer(models=("m",), api_key="sk-local") as server:
        provider = OpenAIProvider(api_key="sk-local", base_url=server.base_url, http_client=http_client)  # type: ignore[arg-type]
        try:
            events = [event async for event in provider.stream(MODEL, request)]
        finally:
            await provider.aclose()
        sdk = AsyncOpenAI(api_key="sk-local", base_url=server.base_url, max_retries=0, timeout=60.0)
        stream = await sdk.chat.completions.create(
            **provider._prepare(MODEL, request), stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass
        await sdk.close()
    ours, theirs = server.requests
    assert ours.body == theirs.body
    transport = {"connection", "accept-encoding"}
    assert {k: v for k, v in ours.headers.items() if k not in transport} == {
        k: v for k, v in theirs.headers.items() if k not in transport
    }
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.response.text and done.response.usage.output_tokens > 0
    assert "usage_estimated" not in done.response.metadata


def test_an_unknown_http_client_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        OpenAIProvider("local", base_url="http://127.0.0.1:1/v1", http_client="requests")  # type: ignore[arg-type]
    assert "providers.local.http_client" in str(caught.value)
    assert "'httpx', 'aiohttp'" in str(caught.value)


def test_the_config_sets_the_http_client_and_the_proxy_defaults_to_aiohttp(tmp_path: Path) -> None:
    from gearshift.config._config import load_config
    from gearshift.providers._factory import build_providers
    from gearshift.serve._transport import on_proxy_http_client

    path = tmp_path / "gearshift.toml"
    path.write_text(
        '[providers.fast]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\nrequire_key = false\n'
        'http_client = "aiohttp"\n\n'
        '[providers.plain]\nkind = "openai"\nbase_url = "http://127.0.0.1:2/v1"\nrequire_key = false\n'
        'http_client = "httpx"\n\n'
        '[providers.unset]\nkind = "openai"\nbase_url = "http://127.0.0.1:3/v1"\nrequire_key = false\n\n'
        + "".join(
            f'[[models]]\nid = "{name}"\nprovider = "{name}"\nmodel = "m"\ntier = 1\n'
            "prices = { input = 1, output = 1 }\n\n"
            for name in ("fast", "plain", "unset")
        )
    )
    config = load_config(path)
    clients = {name: getattr(p, "http_client", None) for name, p in build_providers(config).items()}
    assert clients == {"fast": "aiohttp", "plain": "httpx", "unset": "httpx"}
    served = build_providers(on_proxy_http_client(config))
    assert {name: getattr(p, "http_client", None) for name, p in served.items()} == {
        "fast": "aiohttp",
        "plain": "httpx",
        "unset": "aiohttp",
    }
    path.write_text(path.read_text().replace('http_client = "httpx"', 'http_client = "requests"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "providers.plain.http_client" in str(caught.value)


def test_the_direct_path_reads_the_proxy_from_the_environment_as_httpx_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gearshift.providers._direct_post import env_proxy

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert env_proxy("https://api.example.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://gateway.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.corp.example")
    assert env_proxy("https://api.example.com/v1") == "http://gateway.internal:3128"
    assert env_proxy("http://api.example.com/v1") is None  # no HTTP_PROXY
    assert env_proxy("http://127.0.0.1:8000/v1") is None
    assert env_proxy("https://llm.corp.example/v1") is None
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:3128")
    assert env_proxy("http://api.example.com/v1") == "http://all.internal:3128"


@pytest.mark.parametrize("sdk", sorted(PROVIDERS))
def test_a_sync_caller_that_never_closes_leaves_no_session_open(
    sdk: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The sync bridge's loop never ends, so a router a sync caller drops without `aclose()` used to
    leave its aiohttp session for the collector: "Unclosed client session", and its connections open
    until the process ended. Dropping it must close them on the bridge's loop."""
    from gearshift import ModelRegistry, Router, SignalScorer
    from gearshift.testing import LocalAnthropicServer

    registry = ModelRegistry([MODEL])
    server_type = LocalOpenAIServer if sdk == "openai" else LocalAnthropicServer
    gc.collect()  # what earlier tests left behind is theirs
    caplog.clear()
    with server_type(models=("m",), api_key="sk-local") as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            provider = PROVIDERS[sdk](
                "p", api_key="sk-local", base_url=server.base_url, http_client="aiohttp"
            )
            router = Router(registry, policy=SignalScorer(), providers=[provider])
            assert router.complete(ASK).response.text
            assert isinstance(list(router.stream(ASK))[-1], StreamDone)
            assert server.open_connections > 0
            del router, provider
            gc.collect()
            deadline = time.monotonic() + 10.0
            while server.open_connections and time.monotonic() < deadline:
                time.sleep(0.01)
            gc.collect()
        assert server.open_connections == 0
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
    assert "Unclosed" not in caplog.text


def test_a_sync_caller_that_exits_without_closing_leaves_no_session_open() -> None:
    """At interpreter exit the bridge closes what is still open on its loop (its thread is a daemon,
    so nothing else would): no "Unclosed client session" on the way out."""
    script = """
from gearshift import ChatRequest, Message, ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer

server = LocalOpenAIServer(models=("m",))
model = ModelSpec(id="m", provider="p", model="m", tier=1, prices=ModelPrices(input=1, output=1))
provider = OpenAIProvider("p", base_url=server.base_url, require_key=False, http_client="aiohttp")
router = Router(ModelRegistry([model]), policy=SignalScorer(), providers=[provider])
print(router.complete(ChatRequest(messages=(Message.user("hello"),))).response.text)
"""
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Unclosed" not in done.stderr
    assert "ResourceWarning" not in done.stderr


@pytest.mark.parametrize("http_client", ["httpx", "aiohttp"])
@pytest.mark.parametrize("sdk", sorted(PROVIDERS))
def test_closing_a_sync_router_closes_its_connections_at_once(sdk: str, http_client: str) -> None:
    """`with Router(...) as router:` in sync code: leaving the block closes the clients the sync calls
    opened on the bridge's loop, without waiting for the router to be collected; a call after that
    opens new ones."""
    from gearshift import ModelRegistry, Router, SignalScorer
    from gearshift.testing import LocalAnthropicServer

    server_type = LocalOpenAIServer if sdk == "openai" else LocalAnthropicServer
    with server_type(models=("m",), api_key="sk-local") as server:
        provider = PROVIDERS[sdk]("p", api_key="sk-local", base_url=server.base_url, http_client=http_client)  # type: ignore[arg-type]
        with Router(ModelRegistry([MODEL]), policy=SignalScorer(), providers=[provider]) as router:
            assert router.complete(ASK).response.text
            assert isinstance(list(router.stream(ASK))[-1], StreamDone)
            assert server.open_connections > 0
        assert _connections_after_close(server) == 0
        assert router.complete(ASK).response.text
        router.close()


async def test_closing_a_router_from_async_code_leaves_the_sync_callers_clients_closed_too() -> None:
    """A router used from both sides: `aclose()` closes the running loop's clients and, through
    `close()`, the ones the sync API opened on the bridge's loop."""
    import asyncio

    from gearshift import ModelRegistry, Router, SignalScorer

    with LocalOpenAIServer(models=("m",), api_key="sk-local") as server:
        provider = OpenAIProvider("p", api_key="sk-local", base_url=server.base_url)
        router = Router(ModelRegistry([MODEL]), policy=SignalScorer(), providers=[provider])
        await asyncio.to_thread(router.complete, ASK)  # the sync API, from a worker thread
        assert (await router.acomplete(ASK)).response.text
        await router.aclose()
        assert await asyncio.to_thread(_connections_after_close, server) == 0


def _connections_after_close(server: LocalOpenAIServer | Any) -> int:
    """The server's open connections once it has seen the client's close (a moment after it)."""
    deadline = time.monotonic() + 5.0
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(server.open_connections)
