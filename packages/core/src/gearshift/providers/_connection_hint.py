"""What a failed connection says: the URL it could not reach (its credentials masked) and, for a server
on this machine or the local network, whether it is running there; or, for a server that took the
request and hung up before answering, that it did (it runs: asking whether it does sends the user to
check the wrong thing).

"APIConnectionError: Connection error." names neither where nor what to check; this does both. A
404 from a base URL without the path its API lives under asks whether the path is missing.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .._url_secrets import mask_url

__all__ = ["connection_message", "hung_up", "missing_path_hint"]

# What the HTTP clients raise when a connection that was open closes before a response came: httpx
# (and httpx2) and aiohttp, matched by class name so that neither is imported.
_HANG_UPS = frozenset({"RemoteProtocolError", "ReadError", "ServerDisconnectedError"})


def hung_up(exc: BaseException) -> bool:
    """Whether `exc` (an SDK's connection error) was caused by the server closing a connection it had
    accepted, rather than by a connection that could not be made."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if any(cls.__name__ in _HANG_UPS for cls in type(cause).__mro__):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def connection_message(text: str, *, base_url: str | None, provider: str, hung_up: bool = False) -> str:
    """The message of a connection failure: `text` (the SDK's, already redacted) with where and a hint;
    with `hung_up`, that the server closed the connection before it answered."""
    where = mask_url(base_url) if base_url else "its public API"
    if hung_up:
        return f"provider '{provider}' at {where} hung up before it answered ({text})"
    if not base_url:
        return f"cannot connect to provider '{provider}' at its public API ({text}); check the network"
    url = where
    message = f"cannot connect to {url} (provider '{provider}': {text})"
    if _is_local(base_url):
        message += f"; is it running at {url}?"
    return message


def missing_path_hint(base_url: str | None, api_path: str) -> str:
    """What a 404 from `base_url` adds when the URL has no path but the API lives under `api_path`
    ("http://localhost:11434" for Ollama, whose OpenAI API is under /v1); else nothing."""
    if not base_url or urlsplit(base_url).path.strip("/"):
        return ""
    url = mask_url(base_url).rstrip("/")
    return f"; the server's API is usually under {api_path}: is base_url meant to be {url}{api_path}?"


def _is_local(url: str) -> bool:
    """Whether `url`'s host is this machine or a private network (a server the user runs)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified
