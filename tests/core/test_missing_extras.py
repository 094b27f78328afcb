"""A command that needs an optional extra says, in one line, which `pip install` brings it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gearshift.cli import main
from gearshift.config._config import load_config
from gearshift.providers._factory import missing_sdks


@pytest.fixture(autouse=True)
def _keys_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Keys are set so that only the missing SDK can stop the command.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-unused")
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./gearshift.toml


def _uninstall(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    # A None entry in sys.modules is how Python marks a module that cannot be imported.
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_missing_sdks_names_the_extra_of_each_provider_lacking_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_sdks(load_config()) == {}
    _uninstall(monkeypatch, "anthropic")
    assert missing_sdks(load_config()) == {"anthropic": "anthropic"}


def test_chat_without_any_provider_sdk_says_so_once_with_the_extras(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _uninstall(monkeypatch, "openai", "anthropic")
    assert main(["chat", "hello"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].endswith("pip install 'gearshift[anthropic,openai]'")
