"""The values the ledger hands out: reservations, where each limit stands, and alerts.

All frozen; `to_dict()` gives JSON-ready dicts for the CLI, the MCP server and decision records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._limits import BudgetMode

__all__ = ["BudgetAlert", "BudgetStatus", "LimitStatus", "Reservation"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """An estimated cost held against spend keys until the call is committed or released.

    `recorded` is False when the store could not be reached and the ledger is `fail_open`: the call
    goes ahead unaccounted, and committing it tries to record the spend once more.
    """

    id: str
    keys: tuple[str, ...]
    usd: float
    tokens: int
    expires_at: float
    model_id: str | None = None
    recorded: bool = True


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """Where one limit stands for one spend key, in its current window.

    `spent_*` is what was committed in the window; `reserved_*` what live reservations hold.
    """

    name: str
    key: str
    mode: BudgetMode
    window: str
    limit_usd: float | None
    limit_tokens: int | None
    spent_usd: float
    spent_tokens: int
    reserved_usd: float
    reserved_tokens: int

    @property
    def remaining_usd(self) -> float | None:
        """Dollars neither spent nor reserved (never below 0); None when the limit caps no dollars."""
        if self.limit_usd is None:
            return None
        return max(0.0, self.limit_usd - self.spent_usd - self.reserved_usd)

    @property
    def remaining_tokens(self) -> int | None:
        """Tokens neither spent nor reserved (never below 0); None when the limit caps no tokens."""
        if self.limit_tokens is None:
            return None
        return max(0, self.limit_tokens - self.spent_tokens - self.reserved_tokens)

    @property
    def left_share(self) -> float:
        """The share of the limit still free, 0..1: the smaller of the dollar and token shares."""
        shares = [
            _share(remaining, cap)
            for remaining, cap in (
                (self.remaining_usd, self.limit_usd),
                (self.remaining_tokens, self.limit_tokens),
            )
            if remaining is not None and cap is not None
        ]
        return min(shares, default=1.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, remaining amounts and share included."""
        return {
            "name": self.name,
            "key": self.key,
            "mode": self.mode.value,
            "window": self.window,
            "limit_usd": self.limit_usd,
            "limit_tokens": self.limit_tokens,
            "spent_usd": self.spent_usd,
            "spent_tokens": self.spent_tokens,
            "reserved_usd": self.reserved_usd,
            "reserved_tokens": self.reserved_tokens,
            "remaining_usd": self.remaining_usd,
            "remaining_tokens": self.remaining_tokens,
            "left_share": self.left_share,
        }


def _share(remaining: float, cap: float) -> float:
    return remaining / cap if cap > 0 else 0.0


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Every limit that applies to a set of spend keys, and where each stands."""

    keys: tuple[str, ...]
    limits: tuple[LimitStatus, ...]

    @property
    def remaining_usd(self) -> float | None:
        """The fewest dollars any limit has left; None when no limit caps dollars."""
        return min((r for s in self.limits if (r := s.remaining_usd) is not None), default=None)

    @property
    def left_share(self) -> float | None:
        """The smallest share any limit has left, 0..1; None when no limit applies."""
        return min((s.left_share for s in self.limits), default=None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "keys": list(self.keys),
            "remaining_usd": self.remaining_usd,
            "left_share": self.left_share,
            "limits": [s.to_dict() for s in self.limits],
        }


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A soft limit was passed: the call goes ahead, and the alert hook hears about it."""

    limit: LimitStatus
    requested_usd: float
    requested_tokens: int
    message: str
