"""What a failed connection says: the URL it could not reach (its credentials masked) and, for a server
on this machine or the local network, whether it is running there.

"APIConnectionError: Connection error." names neither where nor what to check; this does both. A
404 from a base URL without the path its API lives under asks whether the path is missing.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .._url_secrets import mask_url

__all__ = ["connection_message", "missing_path_hint"]


def connection_message(text: str, *, base_url: str | None, provider: str) -> str:
    """The message of a connection failure: `text` (the SDK's, already redacted) with where and a hint."""
    if not base_url:
        return f"cannot connect to provider '{provider}' at its public API ({text}); check the network"
    url = mask_url(base_url)
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
