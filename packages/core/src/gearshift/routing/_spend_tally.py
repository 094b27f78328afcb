"""What one piece of work paid for over every routed call it made, failed and cancelled calls included.

Some work spends in ways its own code never sees: shadow evaluation caps what it spends
(`[routing.shadow] max_usd`), yet a shadow call that failed after the provider took it (a timeout is
charged its input), an LLM judge's call that failed inside the judge, or a probe of a tripped deployment
made on the shadow's behalf raise instead of answering; the classifier's own call, when it times out or
fails, leaves no answer whose `attempts` could say what it cost. So the attempts are watched where
every one is recorded (`ChainRun._record`): while `watching(see)` is open in a task, each recorded
attempt goes to `see` (and to any watcher opened around it), in that task and in the tasks it starts
(they inherit the context).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._records import Attempt

__all__ = ["counting", "note_attempt", "watching"]

_WATCHERS: ContextVar[tuple[Callable[[Attempt], None], ...]] = ContextVar(
    "gearshift_attempt_watchers", default=()
)


@contextmanager
def watching(see: Callable[[Attempt], None]) -> Iterator[None]:
    """Send every attempt recorded in this context to `see` until the block ends."""
    token = _WATCHERS.set((*_WATCHERS.get(), see))
    try:
        yield
    finally:
        _WATCHERS.reset(token)


def counting(add: Callable[[float], None]) -> AbstractContextManager[None]:
    """Send the cost of every paid attempt recorded in this context to `add` until the block ends."""
    return watching(lambda attempt: add(attempt.cost_usd) if attempt.cost_usd else None)


def note_attempt(attempt: Attempt) -> None:
    """`attempt` was recorded: tell the watchers open in this context."""
    for see in _WATCHERS.get():
        see(attempt)
