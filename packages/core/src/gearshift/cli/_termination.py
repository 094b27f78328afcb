"""SIGTERM taken the way Ctrl-C is.

`kill`, `timeout`, `docker stop` and systemd stop a command with SIGTERM, whose default ends Python at
once: no `finally` runs, so the calls in flight were neither recorded (a batch's journal) nor settled
in the budget ledger (their reservations held until they expired), and a temporary output file was
left behind. Raised as `Terminated`, a `KeyboardInterrupt`, it takes Ctrl-C's path: the calls are
cancelled and recorded, and the command exits 143 (128 + SIGTERM), quietly.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["Terminated", "terminate_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """The process was sent SIGTERM."""


def terminate_as_interrupt() -> Callable[[], None]:
    """Raise `Terminated` in the main thread on SIGTERM; returns what puts the old handler back.
    Outside the main thread (where no handler can be set) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return restore
