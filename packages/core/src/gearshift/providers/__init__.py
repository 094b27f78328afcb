"""Providers: the official `openai` and `anthropic` SDKs, OpenAI-compatible servers, and replay.

Constructing a provider imports no SDK; the SDK is imported on the first call.
"""

from ._anthropic import AnthropicProvider
from ._assembly import StreamAssembler
from ._base import Provider
from ._factory import build_providers, keys_wanted, missing_keys, required_keys
from ._openai import OpenAIProvider
from ._replay import ReplayProvider
from ._sdk import within

__all__ = [
    "AnthropicProvider",
    "OpenAIProvider",
    "Provider",
    "ReplayProvider",
    "StreamAssembler",
    "build_providers",
    "keys_wanted",
    "missing_keys",
    "required_keys",
    "within",
]
