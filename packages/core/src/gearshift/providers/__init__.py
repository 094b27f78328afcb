"""Providers: the official `openai` and `anthropic` SDKs, OpenAI-compatible servers, and replay."""

from ._base import Provider

__all__ = ["Provider"]
