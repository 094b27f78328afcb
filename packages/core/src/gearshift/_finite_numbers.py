"""JSON has no NaN or infinity: where gearshift writes JSON, an undefined figure is null.

Python's `json` writes `NaN` and `Infinity` by default, which no other JSON reader takes (`jq`,
JavaScript, strict parsers); a report or record holding one would be unreadable outside Python.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite"]


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float, in any dict, list or tuple within it, made None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
