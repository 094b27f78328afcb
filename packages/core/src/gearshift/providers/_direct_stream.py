"""`DirectStream`: a streamed JSON POST with an SDK client's URL and headers, sent on that client's own
httpx client without the SDK's request machinery, and read by the SDK's own stream class (OpenAI's
and Anthropic's streams both use it).

The SDK's `post(..., stream=True)` builds its options, headers, URL and an httpx request anew for every
call, all of it before the first token; under `gearshift serve` that was nearly half the CPU of opening
a stream. This path reads what the SDK client sends once per client (as `DirectPost` does for plain
calls), sends a request built from it on the SDK client's httpx client, which hands over every chunk
that arrived before a break (aiohttp's reader does not, so streams stay on httpx), and wraps the answer
in the SDK's `AsyncStream`: SSE decoding, error events and closing stay the SDK's. Failures read as the
SDK's own: an error status is the SDK client's status error, read from the whole body; an httpx
timeout is `APITimeoutError` and any other failure to send is `APIConnectionError`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from ._direct_post import sdk_headers, sdk_httpx

__all__ = ["DirectStream"]


class DirectStream:
    """Streamed JSON POSTs to one SDK client's API, on that client's httpx client (one per client)."""

    def __init__(self, client: Any, sdk: str) -> None:
        self._client = client
        self._sdk = importlib.import_module(sdk)
        self._httpx = sdk_httpx(sdk)
        self._base_url = str(client.base_url).rstrip("/")
        self.headers = sdk_headers(client)
        # What `build_request` would attach: the SDK client's timeout (the provider's deadline also bounds
        # the call) and the httpx client's own default headers under the SDK's.
        self._timeout = self._httpx.Timeout(client.timeout).as_dict()
        self._http = client._client
        self._all_headers = self._httpx.Headers(self._http.headers)
        self._all_headers.update(self.headers)  # case-insensitively, as `build_request` merges them

    async def open(self, path: str, body: Mapping[str, Any]) -> Any:
        """The SDK's `AsyncStream` over the answer, its chunks left as the JSON objects they arrived as."""
        httpx = self._httpx
        request = httpx.Request(
            "POST",
            f"{self._base_url}/{path.lstrip('/')}",
            headers=self._all_headers,
            content=json.dumps(body, separators=(",", ":")).encode(),
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise self._sdk.APITimeoutError(request=request) from exc
        except Exception as exc:
            raise self._sdk.APIConnectionError(request=request) from exc
        if response.status_code >= 400:
            try:
                await response.aread()
            finally:
                await response.aclose()
            raise self._client._make_status_error_from_response(response)
        return self._sdk.AsyncStream(cast_to=object, response=response, client=self._client)
