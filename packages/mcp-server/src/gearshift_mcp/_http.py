"""Streamable HTTP: where the server may listen, the bearer token it then demands, and serving it.

Anyone who reaches the server can spend its model budget, so it binds to loopback by default and
refuses any other address unless a bearer token is set (`$GEARSHIFT_MCP_TOKEN`). With a token, every
request needs `Authorization: Bearer <token>`, checked by the SDK's bearer middleware through a
`TokenVerifier` that compares in constant time; without one, the SDK answers 401.
"""

from __future__ import annotations

import hmac
import socket
import sys
from typing import TYPE_CHECKING, Any

from gearshift import ConfigError
from gearshift.serve import is_loopback

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MCP_PATH",
    "TOKEN_ENV",
    "StaticTokenVerifier",
    "bearer_auth",
    "check_bind",
    "check_token",
    "http_app",
    "is_loopback",
    "listen",
    "rebinding_protection",
    "serve_http",
]

TOKEN_ENV = "GEARSHIFT_MCP_TOKEN"
"""Environment variable holding the bearer token HTTP clients must send."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MCP_PATH = "/mcp"

_MIN_TOKEN_CHARS = 16
_MIN_DISTINCT_CHARS = 8


class StaticTokenVerifier:
    """Accepts exactly one bearer token (the SDK's `TokenVerifier` protocol)."""

    def __init__(self, token: str) -> None:
        self._token = check_token(token).encode()

    def __repr__(self) -> str:
        return "StaticTokenVerifier(token=***)"

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access grant for the configured token, None for any other (compared in constant time)."""
        from mcp.server.auth.provider import AccessToken

        if not hmac.compare_digest(token.encode(), self._token):
            return None
        # The grant never carries the token itself: nothing downstream needs it, and it may be logged.
        return AccessToken(token="***", client_id="gearshift-mcp-client", scopes=[])


def bearer_auth(token: str) -> dict[str, Any]:
    """`MCPServer` keyword arguments that make every HTTP request present `token`."""
    from mcp.server.auth.settings import AuthSettings
    from pydantic import AnyHttpUrl

    return {
        "token_verifier": StaticTokenVerifier(token),
        # The SDK insists on an OAuth issuer URL; with no authorization-server provider and no
        # resource_server_url it publishes it nowhere, and a static token has no issuer to name.
        "auth": AuthSettings(issuer_url=AnyHttpUrl("http://127.0.0.1"), resource_server_url=None),
    }


def check_token(token: str) -> str:
    """`token`, or a `ConfigError` (that never shows it) when it is blank, holds spaces or is weak.

    Weak is fewer than 16 characters, or fewer than 8 different ones (`aaaa...`, `abab...`): a
    token guards the model budget of everyone who can reach the server.
    """
    advice = (
        f"set ${TOKEN_ENV} to a random secret of at least {_MIN_TOKEN_CHARS} characters (for example: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )
    if not token.strip():
        problem = "is blank"
    elif any(char.isspace() for char in token):
        problem = "contains spaces or other whitespace, which HTTP clients do not send intact"
    elif len(token) < _MIN_TOKEN_CHARS:
        problem = f"is too short ({len(token)} characters)"
    elif len(set(token)) < _MIN_DISTINCT_CHARS:
        problem = f"is too weak (only {len(set(token))} different characters)"
    else:
        return token
    raise ConfigError(f"${TOKEN_ENV} {problem}: {advice}")


def check_bind(host: str, token: str | None) -> None:
    """Refuse, with a message that says what to do, to listen beyond loopback without a token."""
    if token or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve HTTP on {host} without a bearer token: anyone who can reach that address "
        f"could spend your model budget. Set {TOKEN_ENV} to a long random secret (clients then send "
        f"'Authorization: Bearer <token>'), or listen on {DEFAULT_HOST} (the default)"
    )


def http_app(server: MCPServer[Any], *, host: str = DEFAULT_HOST) -> Starlette:
    """The ASGI app serving `server` at `/mcp` for a listener on `host`, protected from DNS
    rebinding when `host` is a loopback address (`rebinding_protection`)."""
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=host, transport_security=rebinding_protection(host)
    )


def rebinding_protection(host: str) -> TransportSecuritySettings | None:
    """For a loopback `host`, the settings that serve only requests whose Host and Origin name this
    machine, so a web page cannot reach the server through a browser by DNS rebinding; None (no
    such check: a token guards it) for any other host.

    A loopback listener asks no token, and the SDK turns the check on only for the exact spellings
    127.0.0.1, localhost and ::1: on 127.0.0.2, LOCALHOST or [::1] every Host and Origin was served.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback(host):
        return None
    bare = host.strip("[]").lower()
    names = dict.fromkeys(["127.0.0.1", "localhost", "[::1]", f"[{bare}]" if ":" in bare else bare])
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:*" for name in names],
        allowed_origins=[f"http://{name}:*" for name in names],
    )


def listen(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A socket bound to `host:port`, or a `ConfigError` naming the option at fault (`--port` for a
    port in use, `--host` for an unknown host).

    Bound before anything says "serving at", so a busy port is one line and exit code 2, not a
    success message followed by uvicorn's own failure.
    """
    from gearshift.serve import bind_address

    sock = bind_address(host, port)
    sock.set_inheritable(True)
    return sock


async def serve_http(
    server: MCPServer[Any],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    sock: socket.socket | None = None,
) -> None:
    """Serve `server` over streamable HTTP at `http://host:port/mcp` until cancelled.

    `sock` is a socket `listen` bound already; without one, it is bound here (and a busy port raises
    `ConfigError` before anything is printed).
    """
    import uvicorn

    sock = sock or listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}{MCP_PATH}"

    class _AnnouncingServer(uvicorn.Server):
        # Announced once the router is built and the socket listens: with `--port 0` this line is
        # how a client learns the port, and a client connecting as soon as it read it was refused.
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(f"gearshift-mcp: serving MCP over streamable HTTP at {url}", file=sys.stderr)
                sys.stderr.flush()

    app = http_app(server, host=host)
    config = uvicorn.Config(app, host=host, port=sock.getsockname()[1], log_level="warning", access_log=False)
    await _AnnouncingServer(config).serve(sockets=[sock])
