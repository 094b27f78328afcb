"""The run metadata of a streamed call, which LangChain does not hand to `_stream` / `_astream`.

A call's `StepContext` is read from its run metadata (LangGraph's `thread_id`, `langgraph_node`, the
caller's `agent_id`...), which `_generate` gets on its run manager. LangChain's streaming paths
(`stream`, `astream`, and `invoke` under `astream_events` or LangGraph's `stream_mode="messages"`)
call `_stream` / `_astream` without it, so a streamed agent step would be routed as an anonymous call:
no per-thread budget, no agent, no step type. The chat model keeps the metadata here while LangChain
runs those paths, and a streaming method reads it when it got no run manager.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables import RunnableConfig

__all__ = ["KeptMetadata", "astreamed_with", "config_metadata", "run_metadata", "streamed_with"]

_T = TypeVar("_T")

_current: ContextVar[Mapping[str, Any] | None] = ContextVar("gearshift_langchain_run_metadata", default=None)


def run_metadata(run_manager: Any) -> Mapping[str, Any]:
    """The metadata of the call being run: its run manager's, else the one kept for a stream."""
    if run_manager is not None:
        metadata: Mapping[str, Any] = run_manager.metadata
        return metadata
    return _current.get() or {}


def config_metadata(config: RunnableConfig, own: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata LangChain gives the run manager of a call with `config`: the parent run's
    inheritable metadata, the model's own `metadata`, then the config's (as `CallbackManager.configure`
    merges them)."""
    callbacks = config.get("callbacks")
    inherited = callbacks.inheritable_metadata if isinstance(callbacks, BaseCallbackManager) else {}
    return {**inherited, **(own or {}), **(config.get("metadata") or {})}


class KeptMetadata:
    """Keeps `metadata` for the streaming methods while a `with` block runs (a class, not a generator
    context manager: it wraps every chunk of a stream and every call, and costs a third as much)."""

    __slots__ = ("_metadata", "_token")

    def __init__(self, metadata: Mapping[str, Any] | None) -> None:
        self._metadata = metadata

    def __enter__(self) -> None:
        self._token = _current.set(self._metadata)

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def streamed_with(metadata: Mapping[str, Any], chunks: Iterator[_T]) -> Iterator[_T]:
    """`chunks`, each one produced with `metadata` kept (a generator runs in its caller's context, so
    the metadata is set around each step and never left behind between them)."""
    try:
        while True:
            with KeptMetadata(metadata):
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


async def astreamed_with(metadata: Mapping[str, Any], chunks: AsyncIterator[_T]) -> AsyncIterator[_T]:
    """`streamed_with` for an async stream."""
    try:
        while True:
            with KeptMetadata(metadata):
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
