"""What a routed call gives back: the answer with its decision and attempts, or a stream of events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from .._bridge import iterate_sync
from .._decision import Decision
from .._messages import ChatResponse, StreamEvent, Usage
from ._records import Attempt, Escalation

__all__ = ["Escalation", "RoutedResponse", "RoutedStream", "SyncRoutedStream", "aclose_events"]


@dataclass(frozen=True, slots=True)
class RoutedResponse:
    """A routed call's answer, with the decision behind it and every attempt it took."""

    response: ChatResponse
    decision: Decision
    attempts: tuple[Attempt, ...]
    request_id: str
    escalations: tuple[Escalation, ...] = ()

    @property
    def model_id(self) -> str:
        """The model that actually answered (differs from `decision.model` after a fallback)."""
        return self.response.model_id

    @property
    def escalated(self) -> bool:
        """Whether a stronger model answered after a hand-over. A hand-over that found no answer
        (its `failed` set: the stronger models failed, or the budget refused them) left the answer
        to the weaker model, so it alone does not count."""
        return any(escalation.failed is None for escalation in self.escalations)

    @property
    def cost_usd(self) -> float:
        """What the whole call cost, failed attempts included."""
        return sum(a.cost_usd for a in self.attempts)

    @property
    def usage(self) -> Usage:
        """Tokens over all attempts."""
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total


async def aclose_events(events: AsyncIterator[StreamEvent]) -> None:
    """Close an async iterator of events if it can be closed (async generators can)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


class RoutedStream:
    """One routed streaming call: iterate it for `StreamEvent`s; `StreamDone` comes last.

    `decision` is known before the first event when the router keeps no budget; with a budget ledger
    the router reads the ledger first, so `decision` is None until iteration has started.
    `result` (the `RoutedResponse`, with every attempt and escalation) is set once the stream has
    finished; after an escalation `result.decision` is the decision that produced the answer.
    """

    def __init__(
        self,
        decision: Decision | None,
        request_id: str | None,
        events: AsyncIterator[StreamEvent | RoutedResponse | Decision],
    ) -> None:
        self.decision = decision
        self.request_id = request_id
        self.result: RoutedResponse | None = None
        self._events = events

    def __aiter__(self) -> RoutedStream:
        return self

    async def __anext__(self) -> StreamEvent:
        item = await self._events.__anext__()
        if isinstance(item, Decision):  # a budgeted stream decides once iteration starts
            self.decision = item
            item = await self._events.__anext__()
        if isinstance(item, RoutedResponse):
            self.result = item
            self.request_id = item.request_id
            await aclose_events(self._events)  # type: ignore[arg-type]
            raise StopAsyncIteration
        assert not isinstance(item, Decision)  # only the first item may be a decision
        return item

    async def aclose(self) -> None:
        """Stop the stream early; the attempt is recorded as cancelled."""
        await aclose_events(self._events)  # type: ignore[arg-type]


class SyncRoutedStream:
    """A `RoutedStream` for synchronous callers (iterates through the sync bridge)."""

    def __init__(self, stream: RoutedStream) -> None:
        self._stream = stream
        self._events = iterate_sync(stream)

    @property
    def decision(self) -> Decision | None:
        """The routing decision (see `RoutedStream.decision` for when it is known)."""
        return self._stream.decision

    @property
    def result(self) -> RoutedResponse | None:
        """The routed response once the stream has finished."""
        return self._stream.result

    def __iter__(self) -> SyncRoutedStream:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._events)

    def close(self) -> None:
        """Stop the stream early."""
        self._events.close()  # type: ignore[attr-defined]
