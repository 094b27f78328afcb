"""LlamaIndex's callback decorators, typed to keep the signature of the method they wrap.

`llm_chat_callback()` and `llm_completion_callback()` are annotated as returning a bare `Callable`, so
a method they decorate is `Callable[..., Any]` to a type checker: `await llm.achat(...)` would be
`Any` in a user's strictly typed code instead of a `ChatResponse`. At run time these are the same
decorators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

__all__ = ["chat_callback", "completion_callback"]

_Method = TypeVar("_Method", bound=Callable[..., Any])


def chat_callback(method: _Method) -> _Method:
    """`llm_chat_callback()`: the call's start, end and error events go to LlamaIndex's callbacks."""
    return cast("_Method", llm_chat_callback()(method))


def completion_callback(method: _Method) -> _Method:
    """`llm_completion_callback()`: as `chat_callback`, for completions."""
    return cast("_Method", llm_completion_callback()(method))
