"""The one seam between the router and the outside world.

A provider serves the models of one provider configuration (OpenAI, Anthropic, an Ollama server...).
It turns a provider-neutral `ChatRequest` into an SDK call for one `ModelSpec`, and the SDK's answer
back into a `ChatResponse` or a stream of events. It raises only `ProviderError` (SDK exceptions are
translated here, at the boundary) and never puts a secret in a message. A provider whose API bills
input the request does not show (Anthropic's tool-use system prompt) says how much in an optional
`added_input_tokens(model, request)`, which budget reservations count; one whose API bills a
prompt-cache write above the input price (Anthropic) says at what multiples in an optional
`cache_write_rates`, which the router gives the prices of the models it serves that leave them out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from .._messages import ChatRequest, ChatResponse, StreamEvent
from .._models import ModelSpec

__all__ = ["Provider", "added_input_tokens", "cache_write_rates"]


@runtime_checkable
class Provider(Protocol):
    """Serves chat calls for the models of one provider configuration."""

    name: str
    """The provider configuration's name, as `ModelSpec.provider` refers to it."""

    async def complete(self, model: ModelSpec, request: ChatRequest) -> ChatResponse:
        """One non-streamed call. `ChatResponse.usage` holds the provider's reported usage and
        `cost_usd` its price; the router charges counts left at 0 (no usage reported) at its
        estimate, and a cost left at 0 at the model's prices, never as a free call."""
        ...

    def stream(self, model: ModelSpec, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """A streamed call: text and tool-call deltas, then exactly one `StreamDone` with usage.

        A failure before the first delta raises `ProviderError` from the first `__anext__`; a break
        after it raises `ProviderError(kind="stream")`, and so does a stream the provider accepted (its
        200 came) that broke before any delta: the provider has the request and bills its input.
        """
        ...


def added_input_tokens(provider: Provider, model: ModelSpec, request: ChatRequest) -> int:
    """Input tokens `provider`'s API bills for `request` on `model` beyond the request itself: its
    optional `added_input_tokens`, else 0 (a provider of the caller's own need not have one)."""
    added = getattr(provider, "added_input_tokens", None)
    return 0 if added is None else int(added(model, request))


def cache_write_rates(provider: Provider) -> tuple[float, float] | None:
    """What `provider`'s API bills a prompt-cache write, as multiples of the input price (5-minute
    cache, 1-hour cache): its optional `cache_write_rates`, else None (billed as input)."""
    rates = getattr(provider, "cache_write_rates", None)
    return None if rates is None else (float(rates[0]), float(rates[1]))
