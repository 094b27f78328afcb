"""What a failed call says: `AllModelsFailed` leads with the causes in a few lines, and a connection
failure names the URL it could not reach (and, for a server on this machine, asks whether it runs)."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from cli_support import closed_port, local_config

from gearshift import (
    AllModelsFailed,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    ProviderError,
    Router,
    SignalScorer,
)
from gearshift.cli import main
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.testing import CutStream, LocalAnthropicServer, LocalOpenAIServer

PRICES = ModelPrices(input=1.0, output=2.0)


def _registry(*models: tuple[str, str]) -> ModelRegistry:
    return ModelRegistry(
        [
            ModelSpec(id=model, provider=provider, model=model, tier=tier, prices=PRICES)
            for tier, (model, provider) in enumerate(models, start=1)
        ]
    )


async def test_all_models_failed_leads_with_each_cause_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    registry = _registry(("o1", "openai"), ("c1", "anthropic"), ("o2", "openai"))
    providers = [OpenAIProvider("openai"), AnthropicProvider("anthropic")]
    async with Router(registry, policy=SignalScorer(), providers=providers) as router:
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("hi")
    message = str(caught.value)
    assert message.startswith(
        "all 3 models tried for this request failed: no API key for provider 'openai': set the "
        "environment variable OPENAI_API_KEY [auth: o1, o2]; no API key for provider 'anthropic'"
    ), message
    assert message.count("OPENAI_API_KEY") == 1
    # Uncaught, it prints the caller's frames, the message and one line per attempt: not a traceback
    # through the provider plumbing for every model (187 lines for the built-in registry before).
    printed = "".join(traceback.format_exception(caught.value))
    assert len(printed.splitlines()) < 40, printed
    assert "_sdk_provider.py" not in printed


async def test_one_model_failing_is_not_called_all_1_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with Router(
        _registry(("o1", "openai")), policy=SignalScorer(), providers=[OpenAIProvider("openai")]
    ) as router:
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("hi")
    assert str(caught.value).startswith("the one model tried for this request failed: no API key"), (
        caught.value
    )


async def test_a_connection_failure_names_the_url_and_asks_if_the_local_server_runs() -> None:
    url = f"http://user:sk-live-abcdef123456@127.0.0.1:{closed_port()}/v1"
    provider = OpenAIProvider("ollama", base_url=url, require_key=False, timeout=5.0)
    registry = _registry(("llama", "ollama"))
    async with Router(registry, policy=SignalScorer(), providers=[provider]) as router:
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("hi")
    (error,) = caught.value.exceptions
    assert isinstance(error, ProviderError) and error.kind == "connection"
    masked = url.replace("sk-live-abcdef123456", "***")
    assert f"cannot connect to {masked}" in str(error)
    assert f"is it running at {masked}?" in str(error)
    assert "sk-live-abcdef123456" not in str(caught.value)


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_a_server_that_hangs_up_mid_call_is_not_asked_whether_it_runs(wire: str) -> None:
    # A server that took the request and dropped the connection before answering was reported as
    # "cannot connect to <url> ...; is it running at <url>?": the user went to check a server that ran.
    local = LocalOpenAIServer(models=("llama",)) if wire == "openai" else None
    with local or LocalAnthropicServer(models=("llama",)) as server:
        server.script("llama", CutStream())
        kind = OpenAIProvider if wire == "openai" else AnthropicProvider
        provider = kind("local", api_key="sk-t", base_url=server.base_url, timeout=5.0)
        async with Router(
            _registry(("llama", "local")), policy=SignalScorer(), providers=[provider]
        ) as router:
            with pytest.raises(AllModelsFailed) as caught:
                await router.acomplete("hi")
        assert server.requests  # it was reached
    (error,) = caught.value.exceptions
    assert isinstance(error, ProviderError) and error.kind == "connection"
    text = str(error)
    assert "cannot connect" not in text and "is it running" not in text, text
    assert f"{server.base_url} hung up before it answered" in text, text


def test_a_public_host_gets_no_local_hint() -> None:
    from gearshift.providers._connection_hint import connection_message

    remote = connection_message(
        "ConnectError: refused", base_url="https://api.groq.com/openai/v1", provider="g"
    )
    assert remote == "cannot connect to https://api.groq.com/openai/v1 (provider 'g': ConnectError: refused)"
    vendor = connection_message("APIConnectionError: Connection error.", base_url=None, provider="openai")
    assert "provider 'openai'" in vendor and "public API" in vendor and "running" not in vendor
    lan = connection_message("x", base_url="http://192.168.1.20:11434/v1", provider="p")
    assert lan.endswith("; is it running at http://192.168.1.20:11434/v1?")


def test_chat_with_a_stopped_local_server_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"http://localhost:{closed_port()}/v1"
    (tmp_path / "gearshift.toml").write_text(local_config(url))
    assert main(["chat", "hello", "--config", "gearshift.toml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is it running at {url}?" in err[0], err
