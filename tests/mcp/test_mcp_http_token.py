"""The HTTP bearer token is refused when blank, spaced or weak, before the server starts, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp_testbed import write_config

from gearshift import ConfigError
from gearshift.testing import LocalOpenAIServer
from gearshift_mcp import TOKEN_ENV, build_server, main
from gearshift_mcp._http import check_token

REFUSED = {
    "empty": ("", "is blank"),
    "sixteen-spaces": (" " * 16, "is blank"),
    "tabs-and-newlines": ("\t \n" * 8, "is blank"),
    "inner-space": ("correct horse battery staple", "contains spaces"),
    "padded": ("  Zk3pQ9vLm2Xw8Rt5Yb  ", "contains spaces"),
    "short": ("Zk3pQ9vLm2", "is too short (10 characters)"),
    "one-character": ("a" * 40, "is too weak (only 1 different characters)"),
    "repeated-pair": ("ab" * 20, "is too weak"),
}


@pytest.mark.parametrize(("token", "problem"), REFUSED.values(), ids=REFUSED.keys())
def test_a_blank_spaced_or_weak_token_is_refused(token: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_token(token)
    assert problem in str(caught.value)
    assert "secrets.token_urlsafe" in str(caught.value)
    if token.strip():
        assert token.strip() not in str(caught.value)


def test_a_random_token_is_accepted() -> None:
    token = "Zk3pQ9vLm2Xw8Rt5Yb7Nc"
    assert check_token(token) == token


@pytest.mark.parametrize("token", [" " * 16, "ab" * 20])
def test_the_server_refuses_such_a_token(llm_server: LocalOpenAIServer, tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        build_server(write_config(tmp_path, llm_server), bearer_token=token)


@pytest.mark.parametrize("token", ["", " " * 16, "short-token"])
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_command_refuses_a_set_but_unusable_token_on_any_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], token: str, host: str
) -> None:
    monkeypatch.setenv(TOKEN_ENV, token)
    assert main(["--http", "--host", host, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"${TOKEN_ENV}" in err and "gearshift-mcp: error:" in err
    if token.strip():
        assert token not in err
