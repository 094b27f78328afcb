"""What a failed connection says: the URL it could not reach (its credentials masked) and, for a server
on this machine or the local network, whether it is running there.

"APIConnectionError: Connection error." names neither where nor what to check; this does both.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .._url_secrets import mask_url

__all__ = ["connection_message"]


def connection_message(text: str, *, base_url: str | None, provider: str) -> str:
    """The message of a connection failure: `text` (the SDK's, already redacted) with where and a hint."""
    if not base_url:
        return f"cannot connect to provider '{provider}' at its public API ({text}); check the network"
    url = mask_url(base_url)
    message = f"cannot connect to {url} (provider '{provider}': {text})"
    if _is_local(base_url):
        message += f"; is it running at {url}?"
    return message


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
