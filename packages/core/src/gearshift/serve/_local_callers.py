"""Who may call a proxy that has no keys: this machine's processes, not the web pages its browser opens.

A proxy without keys listens on loopback only (`gearshift serve` refuses to start beyond it), and
trusts whoever reaches that port: a process of this machine. A web page open in the operator's
browser reaches it too. A cross-site `fetch(url, {method: "POST", mode: "no-cors", body})` is sent
without a preflight (its `text/plain` body is still JSON to the proxy), and a page whose name is
rebound to 127.0.0.1 calls the proxy as its own site. Either would spend the budget. Browsers mark
both: the first with an `Origin` of another site (`null` from a sandbox or a file), the second with
a `Host` that names no loopback address. Pure: headers in, the reason to refuse (or None) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ._binding import is_loopback

__all__ = ["foreign_caller"]


def foreign_caller(headers: Mapping[str, str]) -> str | None:
    """Why a request to a keyless loopback proxy looks like a web page's rather than a local
    process's, or None. A page served from this machine (an `Origin` on a loopback host) is as
    trusted as the process serving it."""
    origin = headers.get("origin")
    if origin is not None and not _loopback_url(origin):
        return f"a web page from {origin} called it"
    host = headers.get("host")
    if host is not None and not _loopback_url(f"//{host}"):
        return f"it was reached as {host}, which is no loopback address (a DNS-rebound web page?)"
    return None


def _loopback_url(url: str) -> bool:
    """Whether `url` (an origin, or `//host[:port]`) names a loopback host."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)
