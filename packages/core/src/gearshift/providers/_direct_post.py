"""`DirectPost`: a JSON POST with an SDK client's URL and headers, sent by aiohttp without the SDK's
request machinery.

Under `gearshift serve` most of the CPU of a call went to the SDK's request path, which builds its
options, headers and URL anew for every call and wraps aiohttp in httpx's models. This path reads what
the SDK client would send once per client (its base URL, and the headers the client's own
`_build_headers` makes for a call that sets nothing per call) and posts the body with aiohttp. An error
status is turned into the SDK's own status error by the SDK client, so its kind, message and
retry-after read as before; aiohttp's own failures are read by `aiohttp_kind`. Streams are
`DirectStream`'s, on the SDK client's httpx client, with the headers and httpx read by the same
`sdk_headers` and `sdk_httpx`.
"""

from __future__ import annotations

import importlib
import json
import urllib.request
from collections.abc import Mapping
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["DirectPost", "sdk_headers", "sdk_httpx"]

# What the SDK's default client allows (openai's DEFAULT_CONNECTION_LIMITS).
_MAX_CONNECTIONS = 1000


class DirectPost:
    """JSON POSTs to one SDK client's API, on one event loop (make one per loop, like the client)."""

    def __init__(self, client: Any, sdk: str) -> None:
        import aiohttp

        self._client = client
        self._sdk = sdk
        self._base_url = str(client.base_url).rstrip("/")
        self.headers = sdk_headers(client)
        self.proxy = env_proxy(self._base_url)
        # No aiohttp timeout: the provider's deadline bounds the whole call.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_MAX_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def post(self, path: str, body: Mapping[str, Any]) -> bytes:
        """The response body of a 2xx answer; any other status raises the SDK's status error."""
        url = f"{self._base_url}/{path.lstrip('/')}"
        data = json.dumps(body, separators=(",", ":")).encode()
        async with self._session.post(url, data=data, headers=self.headers, proxy=self.proxy) as response:
            content = await response.read()
            if response.status < 300:
                return content
            raise self._status_error(url, response.status, response.raw_headers, content)

    def _status_error(
        self, url: str, status: int, headers: tuple[tuple[bytes, bytes], ...], content: bytes
    ) -> Exception:
        httpx = sdk_httpx(self._sdk)
        response = httpx.Response(
            status, headers=list(headers), content=content, request=httpx.Request("POST", url)
        )
        error: Exception = self._client._make_status_error_from_response(response)
        return error

    async def close(self) -> None:
        """Close the connection pool."""
        await self._session.close()


def sdk_headers(client: Any) -> dict[str, str]:
    """The headers the SDK client sends with a POST that sets nothing per call, made by the client's
    own `_build_headers` (auth, its defaults, those a caller removed with `Omit` left out, and the
    ones it adds per request: the retry count, 0 as SDK retries are off, and the timeouts)."""
    models = importlib.import_module(f"{type(client).__module__.split('.')[0]}._models")
    options = models.FinalRequestOptions.construct(method="post", url="/")
    return dict(client._build_headers(options))


def env_proxy(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY / ALL_PROXY name for `url`, unless NO_PROXY exempts its host.

    Read once, when the client is made, as the SDK's httpx client does. (aiohttp's `trust_env` reads
    the environment again on every request, in a worker thread: a quarter of the proxy's CPU per call.)
    """
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def sdk_httpx(sdk: str) -> ModuleType:
    """The httpx the SDK is built on: `httpx2` for openai 3, `httpx` before."""
    base = importlib.import_module(f"{sdk}._base_client")
    module: ModuleType = getattr(base, "httpx2", None) or base.httpx
    return module
