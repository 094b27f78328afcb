"""Number options of the `gearshift` sub-commands, checked where argparse reads them.

A seed, a row floor or a port out of range is refused before any work, in argparse's own one-line
usage error that names the option (exit 2), instead of a NumPy traceback from deep inside a fit or a
server that prints an address it can never bind; so is a share, a floor or a cost that is out of
range or not finite, instead of an error after minutes of training.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["number_in", "whole_number"]


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse `type` that reads a whole number in [`minimum`, `maximum`] (no upper end by default)."""
    span = f"{minimum} or more" if maximum is None else f"{minimum} to {maximum}"

    def read(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {value}")
        return value

    read.__name__ = "whole number"  # what argparse names in its own messages
    return read


def number_in(minimum: float, maximum: float | None = None) -> Callable[[str], float]:
    """An argparse `type` that reads a finite number in [`minimum`, `maximum`] (no upper end by default)."""
    span = f"{minimum:g} or more" if maximum is None else f"from {minimum:g} to {maximum:g}"

    def read(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {span}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a number {span}, got {text}")
        return value

    read.__name__ = "number"  # what argparse names in its own messages
    return read
