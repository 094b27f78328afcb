"""`gearshift-mcp config claude-desktop` and the command's handling of a bad config."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_testbed import KEY_ENV, LOCAL_KEY, write_config

from gearshift.testing import LocalOpenAIServer
from gearshift_mcp import RouterTools, claude_desktop_config, main

REAL_KEY = "sk-real-openai-key-that-must-stay-put-0042"


def _printed_block(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["config", "claude-desktop", *argv]) == 0
    captured = capsys.readouterr()
    assert "claude_desktop_config.json" in captured.err  # the how-to goes to stderr, the JSON alone to stdout
    block: dict[str, object] = json.loads(captured.out)
    return block


def test_the_claude_desktop_block_runs_the_installed_command_on_the_given_config(
    llm_server: LocalOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, LOCAL_KEY)
    config = write_config(tmp_path, llm_server)
    block = _printed_block(capsys, "--config", str(config))
    assert list(block) == ["mcpServers"]
    server = block["mcpServers"]["gearshift"]  # type: ignore[index]
    assert set(server) == {"command", "args", "env"}
    command = Path(server["command"])
    # Claude Desktop starts it without the shell's PATH or working directory: absolute paths only.
    assert command.is_absolute() and os.access(command, os.X_OK)
    assert server["args"][-2:] == ["--config", str(config.resolve())]
    assert server["env"] == {KEY_ENV: "<paste your key here>"}  # named, never copied
    assert LOCAL_KEY not in json.dumps(block)


def test_with_the_built_in_models_the_block_names_both_vendor_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./gearshift.toml here
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", REAL_KEY)
    block = _printed_block(capsys, "--name", "router")
    server = block["mcpServers"]["router"]  # type: ignore[index]
    assert "--config" not in server["args"]
    assert server["env"] == {
        "ANTHROPIC_API_KEY": "<paste your key here>",
        "OPENAI_API_KEY": "<paste your key here>",
    }
    assert REAL_KEY not in json.dumps(block)


def test_the_block_names_the_keys_of_every_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A deployment's provider was left out: Claude Desktop then started the server without that key.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gearshift.toml").write_text(
        '[providers.azure]\nkind = "openai"\nbase_url = "https://example.openai.azure.com/openai/v1"\n'
        'api_key_env = "AZURE_OPENAI_API_KEY"\n\n'
        '[[models]]\nid = "gpt-5-mini"\nprovider = "openai"\nmodel = "gpt-5-mini"\ntier = 1\n'
        'deployments = [{ provider = "azure", model = "my-gpt-5-mini" }]\n'
    )
    server = _printed_block(capsys)["mcpServers"]["gearshift"]  # type: ignore[index]
    assert server["env"] == {
        "AZURE_OPENAI_API_KEY": "<paste your key here>",
        "OPENAI_API_KEY": "<paste your key here>",
    }


@pytest.mark.parametrize("name", ["", "  "])
def test_a_blank_server_name_is_refused(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # It printed a block under the name "", which Claude Desktop lists as a server with no name.
    with pytest.raises(SystemExit) as exited:
        main(["config", "claude-desktop", "--name", name])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--name: the server's name must not be blank" in captured.err


def test_the_config_named_by_the_environment_is_used(
    llm_server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, llm_server)
    monkeypatch.setenv("GEARSHIFT_CONFIG", str(config))
    server = claude_desktop_config()["mcpServers"]["gearshift"]
    assert server["args"][-2:] == ["--config", str(config.resolve())]


def test_a_bad_config_is_one_line_on_stderr_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "gearshift.toml"
    broken.write_text("[routing]\npolicy = 'coin-flip'\n")
    assert main(["--config", str(broken)]) == 2
    assert main(["config", "claude-desktop", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gearshift-mcp: error: ") and "routing.policy" in err[0]
    assert err[1].startswith("gearshift-mcp: error: ") and "no such config file" in err[1]


def test_a_busy_port_is_one_line_before_anything_is_served(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--http", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gearshift-mcp: error: ") and f"127.0.0.1:{port}" in err[0]
    assert "serving at" not in err[0] and "in use" in err[0]


def test_a_host_it_cannot_listen_on_is_named_as_the_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unknown host name was reported as "key '--port': cannot listen on ...".
    monkeypatch.setenv("GEARSHIFT_MCP_TOKEN", "a-long-random-test-token-9f3b2c71")
    assert main(["--http", "--host", "nosuchhost.invalid", "--port", "0"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("gearshift-mcp: error: key '--host': cannot listen on nosuchhost.invalid:0: ")


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"gearshift-mcp {version('gearshift-mcp')}"


def test_the_readme_config_command_works_in_a_fresh_clone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[2]
    (line,) = [
        line.split("#")[0].split()
        for line in (root / "README.md").read_text().splitlines()
        if "gearshift-mcp config claude-desktop" in line
    ]
    monkeypatch.chdir(root)  # as a reader runs it, from the clone's root, with only tracked files
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    argv = line[line.index("gearshift-mcp") + 1 :]
    config = Path(argv[argv.index("--config") + 1])
    assert config.parts[0] == "examples" and (root / config).is_file()  # shipped with the clone
    block = _printed_block(capsys, *argv[2:])
    assert block["mcpServers"]["gearshift"]["args"][-1] == str((root / config).resolve())  # type: ignore[index]


def test_the_readme_the_help_and_the_instructions_name_every_tool(
    server: MCPServer[RouterTools], capsys: pytest.CaptureFixture[str]
) -> None:
    # They named three tools, or two, while the server serves `feedback` too.
    async def listed() -> list[str]:
        async with Client(server) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    tools = anyio.run(listed)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### MCP server", 1)[1].split("\n## ", 1)[0]
    layout = next(line for line in readme.splitlines() if line.startswith("| `packages/mcp-server` |"))
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for where, text in [("README", section), ("layout", layout), ("--help", help_text)]:
        for name in tools:
            assert f"`{name}`" in text or f" {name}" in text, f"{where} does not name {name}"
    for name in tools:
        assert f"`{name}`" in (server.instructions or ""), name


@pytest.mark.parametrize(
    ("table", "line", "key"),
    [
        ('[routing.tasks]\ncode = "gpt-9"\n', 2, "routing.tasks.code"),
        (
            "[routing]\npolicy = 'rules'\n[[routing.rules]]\nwhen = { regex = ['(x'] }\ntier = 1\n",
            4,
            "routing.rules[0].when.regex",
        ),
        ("[log]\npath = 'missing/decisions.jsonl'\n", 2, "log.path"),
    ],
)
def test_a_bad_routing_table_or_log_folder_is_one_line_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, line: int, key: str
) -> None:
    # The router is built when the server starts; a table only it validates was an exception group
    # traceback out of the stdio server, which then hung waiting for its stdin reader.
    broken = tmp_path / "gearshift.toml"
    broken.write_text(table)
    assert main(["--config", str(broken)]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"gearshift-mcp: error: {broken}, line {line}, key '{key}': ")
    assert list(tmp_path.iterdir()) == [broken]
