"""Dollar figures as the report shows them, in the terminal and on the HTML page alike."""

from __future__ import annotations

import math

__all__ = ["usd"]


def usd(value: float | None) -> str:
    """Four decimals, or two significant digits below a tenth of a cent: a cheap model's call costs
    hundredths of a cent, which four decimals would show as $0.0000. `None` is "-"."""
    if value is None:
        return "-"
    size = abs(value)
    decimals = 4 if size >= 0.001 or not size > 0 else 1 - math.floor(math.log10(size))
    return f"-${size:,.{decimals}f}" if value < 0 else f"${size:,.{decimals}f}"
