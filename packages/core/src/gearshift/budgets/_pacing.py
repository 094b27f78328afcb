"""Budget pacing: how much the next call may cost, from where each limit stands. Pure.

For every limit that applies to a step's spend keys, with `remaining` = limit - spent - reserved:

- **Paced** (any mode, when the expected number of steps is known; the caller's `expected_steps`
  wins over the config's): the call may take an even share of what is left,
  `remaining / steps_left`, where `steps_left = max(1, expected_steps - step_index)`. A run that
  spent fast early gets cheaper models later; one that spent little can afford a strong model.
  `step_index` counts the calls of the user's latest turn (`StepContext.step_in_turn`): a run that
  spans user turns (a LangGraph thread) paces each turn over what the earlier ones left, so
  `expected_steps` is the steps of one turn. Counting the whole thread instead, every turn after the
  first `expected_steps` calls would start with `steps_left = 1`: its first step allowed everything
  left, and nothing left for its next steps.
- **Downgrade** (no expected steps): the call may take `remaining * left_share`, where
  `left_share = remaining / limit`. A full budget allows anything up to the whole limit; at half
  left a call may take a quarter of the limit, at 10% left a hundredth: the router steps down
  tiers as the budget runs down, smoothly and without knowing the run's length.
- **Hard** (no expected steps): the call may take at most what is left (it would be refused above).
- **Soft** (no expected steps): no constraint; passing it only raises an alert.

`max_usd`/`max_tokens` are the smallest of these. `hard_max_usd` (`hard_max_tokens`) is the smallest
`remaining` of the limits that refuse (hard, and downgrade, which refuses only when even the cheapest
model does not fit): a call above it would be refused. The router picks the best model under
`max_usd`, falls back to the cheapest when none fits, and lets the ledger's reservation refuse when
even that is too dear; under a limit that refuses it caps the call's output to what it reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._limits import BudgetMode
from ._status import BudgetStatus, LimitStatus

__all__ = ["Allowance", "format_usd", "pace"]


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the budget lets the next call cost; `reason` says why in plain words."""

    max_usd: float | None
    """The most one call may cost now (None: unconstrained)."""
    max_tokens: int | None
    """The most tokens (input plus output) one call may use now (None: unconstrained)."""
    hard_max_usd: float | None
    """What refusing limits still allow: a call estimated above it would be refused."""
    left_share: float | None
    """The smallest share any limit has left, 0..1 (for `StepContext.budget_left_share`)."""
    downgrade: bool
    """True when pacing or a downgrade limit (not only a hard cap) constrains the call."""
    reason: str
    """E.g. "run:abc has $0.40 of $1.00 left for ~8 more steps: $0.05 per step"."""
    hard_max_tokens: int | None = None
    """What refusing limits still allow in tokens (input plus output): a call above it would be refused."""

    @property
    def refuses(self) -> bool:
        """Whether a limit that refuses (hard or downgrade) applies: reservations must then bound spend."""
        return self.hard_max_usd is not None or self.hard_max_tokens is not None


UNCONSTRAINED = Allowance(None, None, None, None, False, "no budget limit applies")
"""The allowance when no limit applies."""


@dataclass(frozen=True, slots=True)
class _Cap:
    usd: float | None
    tokens: int | None
    paced: bool
    reason: str


def pace(status: BudgetStatus, *, step_index: int = 0, expected_steps: int | None = None) -> Allowance:
    """The allowance for the call at `step_index` of a run (of its user's latest turn, when it spans
    several) expected to take `expected_steps` calls."""
    if not status.limits:
        return UNCONSTRAINED
    steps_left = None if expected_steps is None else max(1, expected_steps - step_index)
    caps = [cap for limit in status.limits if (cap := _cap(limit, steps_left)) is not None]
    by_usd = min((c for c in caps if c.usd is not None), key=lambda c: c.usd or 0.0, default=None)
    by_tokens = min((c for c in caps if c.tokens is not None), key=lambda c: c.tokens or 0, default=None)
    refusing = [r for s in status.limits if s.mode.refuses and (r := s.remaining_usd) is not None]
    refusing_tokens = [r for s in status.limits if s.mode.refuses and (r := s.remaining_tokens) is not None]
    binding = by_usd or by_tokens
    return Allowance(
        max_usd=by_usd.usd if by_usd else None,
        max_tokens=by_tokens.tokens if by_tokens else None,
        hard_max_usd=min(refusing, default=None),
        left_share=status.left_share,
        downgrade=any(c.paced for c in caps),
        reason=binding.reason if binding else "only soft limits apply; they alert and never constrain",
        hard_max_tokens=min(refusing_tokens, default=None),
    )


def _cap(limit: LimitStatus, steps_left: int | None) -> _Cap | None:
    """What one limit lets the next call cost, or None when it sets no constraint."""
    remaining_usd, remaining_tokens = limit.remaining_usd, limit.remaining_tokens
    left = _left(limit)
    if steps_left is not None:
        usd = None if remaining_usd is None else remaining_usd / steps_left
        tokens = None if remaining_tokens is None else remaining_tokens // steps_left
        per = format_usd(usd) if usd is not None else f"{tokens} tokens"
        steps = "1 more step" if steps_left == 1 else f"~{steps_left} more steps"
        return _Cap(usd, tokens, True, f"{limit.key} has {left} left for {steps}: {per} per step")
    if limit.mode is BudgetMode.DOWNGRADE:
        usd = None if remaining_usd is None else remaining_usd * _share(remaining_usd, limit.limit_usd)
        tokens = (
            None
            if remaining_tokens is None
            else int(remaining_tokens * _share(remaining_tokens, limit.limit_tokens))
        )
        per = format_usd(usd) if usd is not None else f"{tokens} tokens"
        return _Cap(
            usd, tokens, True, f"{limit.key} has {left} left ({limit.left_share:.0%}): up to {per} per call"
        )
    if limit.mode is BudgetMode.HARD:
        return _Cap(remaining_usd, remaining_tokens, False, f"{limit.key} has {left} left (hard limit)")
    return None


def _share(remaining: float, cap: float | None) -> float:
    return remaining / cap if cap else 0.0


def _left(limit: LimitStatus) -> str:
    """`$0.40 of $1.00` or `1200 of 5000 tokens` (dollars and tokens when both are capped)."""
    parts = []
    if limit.limit_usd is not None and limit.remaining_usd is not None:
        parts.append(f"{format_usd(limit.remaining_usd)} of {format_usd(limit.limit_usd)}")
    if limit.limit_tokens is not None and limit.remaining_tokens is not None:
        parts.append(f"{limit.remaining_tokens} of {limit.limit_tokens} tokens")
    return " and ".join(parts)


def format_usd(value: float) -> str:
    """Dollars for people: `$0.40`, `$12.00`; sub-cent amounts keep their significant digits."""
    if value == 0:
        return "$0"
    if abs(value) >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.6f}".rstrip("0").rstrip(".")
