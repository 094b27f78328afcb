"""Messages an adapter converted, kept per the framework values they came from, for the next step.

An agent sends its whole history on every step, and an adapter converts each of its framework's
messages to a gearshift `Message` and reads what its step context needs of it (hashed tool calls, a
failed result) on every step again, although only the latest messages are new. `KeptMessages` keeps
both per key, a key the adapter builds from every value the conversion reads (so that equal keys mean
equal conversions: framework messages are mutable and are never keyed by identity). What the adapter
read of a message (its facts) is found by the kept `Message` itself, which is frozen: by identity,
checked, while the store holds it.

Bounded: past `limit` messages the older half is dropped, rather than grow or lose at once the
messages every step sends (the system prompt, the first turns).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from ._messages import Message

__all__ = ["KeptMessages"]

Facts = TypeVar("Facts")


class KeptMessages(Generic[Facts]):
    """Converted messages and what an adapter read of them, kept per key (see the module docstring)."""

    __slots__ = ("_facts", "_kept", "_limit")

    def __init__(self, limit: int = 1024) -> None:
        if limit < 2:
            raise ValueError(f"a store of kept messages holds at least 2, got limit={limit}")
        self._limit = limit
        self._kept: dict[Hashable, Message] = {}
        self._facts: dict[int, tuple[Message, Facts]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable) -> Message | None:
        """The message kept for `key`, or None."""
        return self._kept.get(key)

    def keep(self, key: Hashable, message: Message, facts: Facts | None = None) -> None:
        """Keep `message` for `key`, and `facts` (when not None) for the message."""
        if len(self._kept) >= self._limit:
            newer = list(self._kept.items())[self._limit // 2 :]
            self._kept = dict(newer)
            kept = self._facts
            self._facts = {id(m): kept[id(m)] for _, m in newer if id(m) in kept}
        self._kept[key] = message
        if facts is not None:
            self._facts[id(message)] = (message, facts)

    def facts(self, message: Message) -> Facts | None:
        """What was kept with `message`, if this store returned it; None for any other message."""
        found = self._facts.get(id(message))
        return found[1] if found is not None and found[0] is message else None
