"""The input a model is billed for a request beyond gearshift's estimate of the request itself. Pure.

What goes out is not always what the caller wrote: a model below the top tier may be offered the
router's `escalate` tool, and a provider's API may add input of its own (Anthropic's tool-use system
prompt, see `Provider.added_input_tokens`). Both are billed as input, so the decision's estimated
cost, the context-window check and the budget reservation all count them, from this one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..providers._base import added_input_tokens
from ..signals._tokens import tool_tokens

if TYPE_CHECKING:
    from .._messages import ChatRequest
    from .._models import ModelSpec
    from ..providers import Provider

__all__ = ["added_tokens", "added_tokens_by_model"]


def added_tokens(request: ChatRequest, sent: ChatRequest, model: ModelSpec, provider: Provider | None) -> int:
    """The input tokens `sent` (`request` as it goes out, the `escalate` tool perhaps added) bills on
    `model` through `provider` beyond the estimate of `request`."""
    tokens = 0 if sent is request else tool_tokens(sent.tools) - tool_tokens(request.tools)
    return tokens if provider is None else tokens + added_input_tokens(provider, model, sent)


def added_tokens_by_model(
    request: ChatRequest,
    sent: ChatRequest,
    models: tuple[ModelSpec, ...],
    providers: Mapping[str, Provider],
) -> dict[str, int]:
    """`added_tokens` for each of `models` (by id) that adds any, each through its own provider."""
    added = {}
    for model in models:
        tokens = added_tokens(request, sent, model, providers.get(model.provider))
        if tokens:
            added[model.id] = tokens
    return added
