"""No API key ever shows up in a repr, an error message, a decision record or a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gearshift import AllModelsFailed, GearshiftConfig, Router, load_config, read_records
from gearshift.testing import Fail, LocalAnthropicServer, LocalOpenAIServer

OPENAI_KEY = "sk-secret-openai-4d1e8b7c"
ANTHROPIC_KEY = "sk-ant-secret-9a2f6e13"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert OPENAI_KEY not in text
        assert ANTHROPIC_KEY not in text


def _config(tmp_path: Path, openai_url: str, anthropic_url: str) -> GearshiftConfig:
    path = tmp_path / "gearshift.toml"
    path.write_text(
        f"""
[providers.openai]
base_url = "{openai_url}"

[providers.anthropic]
base_url = "{anthropic_url}"

[[models]]
id = "small"
provider = "openai"
model = "small"
tier = 1
prices = {{ input = 0.1, output = 0.4 }}

[[models]]
id = "claude"
provider = "anthropic"
model = "claude"
tier = 2
prices = {{ input = 3, output = 15 }}

[log]
path = "decisions.jsonl"
include_prompts = true
"""
    )
    return load_config(path)


async def test_keys_from_the_environment_stay_out_of_reprs_errors_records_and_logs(
    keys: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDKs log requests at debug level
    with (
        LocalOpenAIServer(models=("small",), api_key=OPENAI_KEY) as openai_server,
        LocalAnthropicServer(models=("claude",), api_key=ANTHROPIC_KEY) as anthropic_server,
    ):
        config = _config(tmp_path, openai_server.base_url, anthropic_server.base_url)
        router = Router.from_config(config)
        ok = await router.acomplete("hello")  # both keys really reach the servers and work
        assert ok.model_id == "small"
        # Upstream errors that echo the key back must not carry it any further.
        openai_server.script("small", Fail(status=401, body=f"invalid key {OPENAI_KEY}"))
        anthropic_server.script("claude", Fail(status=500, body=f"upstream saw {ANTHROPIC_KEY}"))
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("hello again")
        router.close()
    error = caught.value
    assert "127.0.0.1" in caplog.text  # the SDKs did log their requests: the check below has teeth
    _assert_clean(
        str(error),
        repr(error),
        *(str(e) for e in error.exceptions),
        repr(router),
        *(repr(p) for p in router.providers.values()),
        repr(config),
        config.model_dump_json(),
        (tmp_path / "decisions.jsonl").read_text(),
        caplog.text,
    )
    kinds = [
        r.get("error_kind") for r in read_records(tmp_path / "decisions.jsonl") if r["kind"] == "attempt"
    ]
    assert kinds == [None, "auth", "server"]
