"""What one piece of background work spent over every routed call it made, failed calls included.

Shadow evaluation caps what it spends (`[routing.shadow] max_usd`), and a shadow spends in ways its
own code never sees the cost of: a shadow call that failed after the provider took it (a timeout is
charged its input), an LLM judge's call that failed inside the judge, a probe of a tripped
deployment made on the shadow's behalf. So the count is taken where every attempt is recorded
(`ChainRun._record`): while `counting(add)` is open in a task, each recorded attempt's cost goes to
`add`, in that task and in the tasks it starts (they inherit the context).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["counting", "note_spend"]

_COUNTER: ContextVar[Callable[[float], None] | None] = ContextVar("gearshift_spend_counter", default=None)


@contextmanager
def counting(add: Callable[[float], None]) -> Iterator[None]:
    """Send the cost of every attempt recorded in this context to `add` until the block ends."""
    token = _COUNTER.set(add)
    try:
        yield
    finally:
        _COUNTER.reset(token)


def note_spend(usd: float) -> None:
    """One recorded attempt cost `usd`: tell the counter open in this context, if any."""
    add = _COUNTER.get()
    if add is not None and usd:
        add(usd)
