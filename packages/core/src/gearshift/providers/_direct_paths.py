"""`DirectPaths`: one provider's direct paths, per event loop: plain calls posted by `DirectPost`, and
streams sent by `DirectStream` on the SDK client's own connections. `OpenAIProvider` and
`AnthropicProvider` both keep one.
"""

from __future__ import annotations

from typing import Any

from ._direct_post import DirectPost
from ._direct_stream import DirectStream
from ._sdk import LoopClients

__all__ = ["DirectPaths"]


class DirectPaths:
    """The `DirectPost` and `DirectStream` of each event loop, made from that loop's SDK client."""

    def __init__(self, sdk: str) -> None:
        self._sdk = sdk
        self._posts: LoopClients[DirectPost] = LoopClients()
        self._streams: LoopClients[DirectStream] = LoopClients()

    def post(self, client: Any) -> DirectPost:
        """The running loop's `DirectPost`, made from `client` on first use."""
        return self._posts.get(lambda: DirectPost(client, self._sdk))

    def stream(self, client: Any) -> DirectStream:
        """The running loop's `DirectStream`, made from `client` on first use."""
        return self._streams.get(lambda: DirectStream(client, self._sdk))

    async def aclose(self) -> None:
        """Close the running loop's direct connections. Its `DirectStream` only forgets its client: it
        sends on the SDK client's connections, which the provider closes with the SDK client."""
        post = self._posts.pop_current()
        if post is not None:
            await post.close()
        self._streams.pop_current()
