"""`DoneSentinelStream`: the OpenAI SDK's chunk stream, plus whether the server closed it with `[DONE]`.

A Chat Completions stream is complete when a chunk carries a `finish_reason`. Some compatible servers
never send one (Ollama sent `""` on every chunk, ollama/ollama#4357; sglang too, sgl-project/sglang#3912;
Gemini proxies send null throughout), yet end the stream with `data: [DONE]` as the API does. The SDK
swallows that sentinel, so a stream that ended with it cannot be told from one a proxy cut cleanly;
this watches the SDK's decoded events for it and, after the last chunk, yields `STREAM_DONE`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

__all__ = ["STREAM_DONE", "DoneSentinelStream"]

STREAM_DONE: dict[str, Any] = {"object": "gearshift.stream_done"}
"""Yielded once after the last chunk when the server ended the stream with `data: [DONE]`."""


class DoneSentinelStream:
    """Iterates the SDK's `AsyncStream` (its chunks as JSON objects), then `STREAM_DONE` if it was seen."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._done = False
        # The SDK's iterator has not started yet, so its decoder can still be swapped. An SDK release
        # that keeps it elsewhere leaves the stream unwatched: it then reads as it did before this,
        # a stream with no finish_reason being incomplete, rather than failing every stream.
        decoder = getattr(stream, "_decoder", None)
        if decoder is None or not hasattr(decoder, "aiter_bytes"):
            return

        def watched(chunks: AsyncIterator[bytes]) -> AsyncIterator[Any]:
            async def events() -> AsyncIterator[Any]:
                async for event in decoder.aiter_bytes(chunks):
                    self._done = self._done or event.data.startswith("[DONE]")
                    yield event

            return events()

        stream._decoder = _Decoder(watched)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for chunk in self._stream:
            yield chunk
        if self._done:
            yield STREAM_DONE

    async def close(self) -> None:
        """Release the connection."""
        await self._stream.close()


class _Decoder:
    """The SDK's SSE decoder seen through `aiter_bytes` (the one method its async stream calls)."""

    def __init__(self, aiter_bytes: Any) -> None:
        self.aiter_bytes = aiter_bytes
