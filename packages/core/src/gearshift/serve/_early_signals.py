"""SIGTERM and Ctrl-C that come after the proxy said it serves, but before uvicorn took the signals.

Once its line is out, `gearshift serve` ends on SIGTERM or SIGINT with exit code 0, as uvicorn does.
uvicorn takes the signals a moment after the line; until then they reach whatever handler the CLI
had, which raises (`cli._termination`). Raised there, the interrupt landed wherever the main thread
was: inside `logging.config.dictConfig` clearing the old handlers, it came between `try:` and a
handler's `acquire()`, and `logging.shutdown`'s `finally: release()` failed with "cannot release
un-acquired lock", exit 1. A handler that raises is never safe on this path, so neither of these does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["held_for_uvicorn", "sent_to"]

# SIGHUP too: uvicorn's supervisor of several workers restarts them on it, re-reading the config and
# the keys file; a lone process would die of it at once, its calls neither recorded nor settled.
_SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


@contextlib.contextmanager
def sent_to(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP go to `handler` inside the block, then to the handlers they had: for
    one process, whose `uvicorn.Server` has a handler that stops it even before it runs (uvicorn takes
    SIGTERM and SIGINT from it while it runs, never SIGHUP: that stays with `handler`)."""
    if threading.current_thread() is not threading.main_thread():  # signals are only taken there
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


@contextlib.contextmanager
def held_for_uvicorn() -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP that come inside the block before uvicorn put its own handlers in place
    are held, then sent again to the main thread once uvicorn's handler has taken their place: for
    `uvicorn.run`'s supervisor of several workers, which offers no handler to call before it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)  # no lock: a second signal may come while the main thread is here

    previous = {sig: signal.signal(sig, hold) for sig in _SIGNALS}
    done = threading.Event()

    def hand_on() -> None:
        # Short-lived: it ends once uvicorn took the signals (within a second of the line) or the block.
        while not done.wait(0.01):
            if all(signal.getsignal(sig) is not hold for sig in _SIGNALS):
                # `hold` runs in the main thread, which replaced it: nothing more can be held now.
                for sig in held:
                    _send_to_main_thread(sig)
                return

    watcher = threading.Thread(target=hand_on, name="gearshift-serve-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def _send_to_main_thread(sig: int) -> None:
    """`sig` to the main thread, whose Python handlers it runs at once even in a blocking wait (a
    signal to this thread would wait for the main one to wake). Windows has no `pthread_kill`."""
    main = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and main is not None:
        signal.pthread_kill(main, sig)
    else:  # pragma: no cover - Windows
        signal.raise_signal(sig)
