"""The `gearshift-mcp` command: serve over stdio (the default) or streamable HTTP, or print client config.

```
gearshift-mcp [--config PATH]                                  stdio, for Claude Desktop and the like
gearshift-mcp [--config PATH] --http [--host H] [--port N]     streamable HTTP at http://H:N/mcp
gearshift-mcp config claude-desktop [--config PATH]            the JSON block for Claude Desktop
```

Over stdio, stdout belongs to the protocol: every message of ours goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gearshift import GearshiftConfig, GearshiftError, load_config
from gearshift.cli import Terminated, terminate_as_interrupt

from ._http import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, check_bind, check_token, listen

__all__ = ["claude_desktop_config", "main"]

_CONFIG_ENV = "GEARSHIFT_CONFIG"  # the core's variable (gearshift.config._config.CONFIG_ENV)
_KEY_PLACEHOLDER = "<paste your key here>"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gearshift-mcp",
        description="MCP server for gearshift: the route, escalate, budget_status and feedback tools.",
    )
    parser.add_argument("--version", action="version", version=f"gearshift-mcp {_version()}")
    parser.add_argument(
        "--config", type=Path, help=f"a gearshift.toml (default: ${_CONFIG_ENV}, then ./gearshift.toml)"
    )
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"HTTP address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config = commands.add_parser("config", help="print the config block an MCP client needs")
    config.add_argument("client", choices=["claude-desktop"], help="the MCP client")
    config.add_argument("--config", dest="client_config", type=Path, help="the gearshift.toml to point at")
    config.add_argument(
        "--name",
        default="gearshift",
        type=_server_name,
        help="the server's name in the client (default gearshift)",
    )
    return parser


def _server_name(name: str) -> str:
    if not name.strip():
        raise argparse.ArgumentTypeError("the server's name must not be blank")
    return name


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the process exit code."""
    args = _parser().parse_args(argv)
    # Claude Desktop and other clients stop a server that outlives its closed stdin with SIGTERM,
    # whose default ended the process at once: an escalate in flight kept its budget reservation
    # until it expired and its model call was never settled. Taken as Ctrl-C, it is cancelled.
    restore_sigterm = terminate_as_interrupt()
    try:
        if args.command == "config":
            block = claude_desktop_config(args.client_config or args.config, name=args.name)
            print(json.dumps(block, indent=2))
            print(
                "Merge this into Claude Desktop's claude_desktop_config.json (Settings > Developer > Edit "
                "Config), put your keys in `env`, then restart Claude Desktop.",
                file=sys.stderr,
            )
            return 0
        return _serve(args)
    except GearshiftError as error:
        print(f"gearshift-mcp: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        code = 143 if isinstance(stop, Terminated) else 130
        if args.command is None and not args.http:
            from ._stdio import end_process

            end_process(code)
        return code
    finally:
        restore_sigterm()


def _serve(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV)
    if args.http:
        # Before the slow imports: a refusal should be instant. A variable that is set but blank is
        # a mistake to report, not a request for no token.
        if token is not None:
            check_token(token)
        check_bind(args.host, token)
    if not 0 <= args.port <= 65535:
        print(f"gearshift-mcp: error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    # Bound first: a port in use is one line, before the config is read or "serving at" is printed.
    sock = listen(args.host, args.port) if args.http else None
    from gearshift import Router

    config = Router.check_config(args.config)  # every table, before a warning or "serving at"
    _drop_placeholder_keys(config)
    _warn_missing_keys(config)

    import anyio

    from ._server import build_server

    if not args.http:
        from ._stdio import run_stdio

        anyio.run(run_stdio, build_server(config))
        return 0
    from ._http import serve_http

    server = build_server(config, bearer_token=token)

    async def serve() -> None:
        await serve_http(server, host=args.host, port=args.port, sock=sock)

    anyio.run(serve)
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gearshift-mcp")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"


def _drop_placeholder_keys(config: GearshiftConfig) -> None:
    """Unset each key variable still holding the placeholder `claude_desktop_config` wrote: a user with
    one vendor's key leaves the other's line as it was, and that text must not be sent as a key."""
    from gearshift.providers import required_keys

    for variable in sorted(set(required_keys(config).values())):
        if os.environ.get(variable, "").strip() == _KEY_PLACEHOLDER:
            del os.environ[variable]
            print(
                f"gearshift-mcp: {variable} still holds the placeholder {_KEY_PLACEHOLDER!r} of "
                "`gearshift-mcp config`: taken as unset (put the key there, or remove the line)",
                file=sys.stderr,
            )


def _warn_missing_keys(config: GearshiftConfig) -> None:
    from gearshift.providers import missing_keys

    missing = missing_keys(config)
    if missing:
        names = ", ".join(f"{env} (provider '{name}')" for name, env in missing.items())
        print(
            f"gearshift-mcp: no API key set for {names}. `route` works without keys; `escalate` "
            "needs the key of the models it asks and says which one is missing.",
            file=sys.stderr,
        )


def claude_desktop_config(config_path: Path | None = None, *, name: str = "gearshift") -> dict[str, Any]:
    """The `mcpServers` block that runs this server from Claude Desktop.

    The command is an absolute path (Claude Desktop does not use the shell's PATH) and so is the
    config file. `env` names every API key the config's models need, with a placeholder value:
    keys are never copied out of the environment.
    """
    path = _config_file(config_path)
    config = load_config(path)
    command, args = _command()
    if path is not None:
        args = [*args, "--config", str(path.resolve())]
    from gearshift.providers import required_keys

    env = {variable: _KEY_PLACEHOLDER for variable in sorted(set(required_keys(config).values()))}
    return {"mcpServers": {name: {"command": command, "args": args, "env": env}}}


def _config_file(given: Path | None) -> Path | None:
    if given is not None:
        return given.expanduser()
    from_env = os.environ.get(_CONFIG_ENV)
    if from_env:
        return Path(from_env).expanduser()
    local = Path("gearshift.toml")
    return local if local.is_file() else None


def _command() -> tuple[str, list[str]]:
    found = shutil.which("gearshift-mcp")
    if found:
        return str(Path(found).resolve()), []
    return sys.executable, ["-m", "gearshift_mcp"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
