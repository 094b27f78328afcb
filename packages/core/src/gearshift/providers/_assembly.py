"""Assemble streamed deltas into the final assistant message and its `ChatResponse`.

Providers feed every `TextDelta` and `ToolCallDelta` they yield into a `StreamAssembler`, so a
streamed call ends with the same `ChatResponse` a plain call would have returned. Non-streamed
responses go through it too (one delta per part), which keeps one code path for building responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._messages import ChatResponse, Message, TextDelta, ToolCall, ToolCallDelta, Usage
from .._models import ModelSpec

__all__ = ["StreamAssembler"]


@dataclass(slots=True)
class _PendingCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Accumulates text and tool-call deltas; pure, no I/O.

    Tool-call pieces are tied together by `ToolCallDelta.index`: the first piece that carries an id or
    a name sets it (some OpenAI-compatible servers repeat the name on every piece, which must not be
    concatenated), arguments are concatenated in arrival order. Calls come out ordered by index.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, _PendingCall] = {}

    def add(self, event: TextDelta | ToolCallDelta) -> None:
        """Take one delta into account."""
        if isinstance(event, TextDelta):
            self._text.append(event.text)
            return
        call = self._calls.setdefault(event.index, _PendingCall())
        if event.id and not call.id:
            call.id = event.id
        if event.name and not call.name:
            call.name = event.name
        if event.arguments:
            call.arguments.append(event.arguments)

    def extend(self, events: Iterable[TextDelta | ToolCallDelta]) -> None:
        """Take several deltas into account, in order."""
        for event in events:
            self.add(event)

    @property
    def text(self) -> str:
        """The text so far."""
        return "".join(self._text)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls so far, by index. A call without an id gets `call_<index>`; empty arguments `{}`."""
        return tuple(
            ToolCall(
                id=call.id or f"call_{index}",
                name=call.name or "",
                arguments="".join(call.arguments) or "{}",
            )
            for index, call in sorted(self._calls.items())
        )

    @property
    def output(self) -> str:
        """Everything written so far that a provider bills as output: the text and the tool calls."""
        return self.text + "".join(call.name + call.arguments for call in self.tool_calls)

    @property
    def is_empty(self) -> bool:
        """Whether no delta carried any content yet."""
        return not self.text and not self._calls

    def message(self) -> Message:
        """The assistant message assembled so far."""
        return Message.assistant(self.text, self.tool_calls)

    def finish(
        self,
        model: ModelSpec,
        provider_model: str,
        usage: Usage,
        finish_reason: str | None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ChatResponse:
        """The final response, priced with the model's prices."""
        return ChatResponse(
            message=self.message(),
            model_id=model.id,
            provider_model=provider_model or model.model,
            usage=usage,
            finish_reason=finish_reason,
            cost_usd=model.cost(usage),
            metadata=dict(metadata or {}),
        )
