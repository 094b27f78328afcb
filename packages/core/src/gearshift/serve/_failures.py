"""How the core's errors reach a client: an HTTP status, a message, headers; no key, ever.

```
InvalidRequestError          400 (UnknownModelError: 404, the known models listed)
NoEligibleModel              400, why each model was ruled out
BudgetExceeded               429, limit, spent and requested; retry-after when a day or month reopens;
                             x-should-retry: false when a retry by the SDK cannot pass
LedgerUnavailable            503, the store's URL with its password masked
ProviderError bad_request    400, the provider's words
ProviderError rate_limit     429, retry-after when the provider gave one
ProviderError (other kinds)  502
AllModelsFailed              502, every attempt listed (429 when every attempt was rate limited)
ConfigError                  500
```

Each API's wire module renders a `Failure` in its own error shape.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from .._errors import (
    AllModelsFailed,
    BudgetExceeded,
    ConfigError,
    GearshiftError,
    InvalidRequestError,
    LedgerUnavailable,
    NoEligibleModel,
    ProviderError,
    UnknownModelError,
)

__all__ = ["Failure", "failure_from"]


@dataclass(frozen=True, slots=True)
class Failure:
    """An error answer: `kind` is one of `invalid_request`, `not_found`, `authentication`,
    `budget_exceeded`, `rate_limited`, `too_large`, `unavailable`, `upstream`, `server`."""

    status: int
    kind: str
    message: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def failure_from(error: GearshiftError, *, timezone: str = "UTC", now: float | None = None) -> Failure:
    """The answer to a core error (see the module's table)."""
    if isinstance(error, UnknownModelError):
        return Failure(404, "not_found", str(error), param="model")
    if isinstance(error, InvalidRequestError):
        return Failure(400, "invalid_request", str(error), param=_param(str(error)))
    if isinstance(error, NoEligibleModel):
        return Failure(400, "invalid_request", str(error))
    if isinstance(error, BudgetExceeded):
        reopens = _reopens_in(error.window, timezone, time.time() if now is None else now)
        headers = {"retry-after": str(reopens)} if reopens is not None else {}
        if _retry_is_futile(error, reopens):
            headers["x-should-retry"] = "false"
        return Failure(429, "budget_exceeded", str(error), headers=headers)
    if isinstance(error, LedgerUnavailable):
        return Failure(503, "unavailable", str(error))
    if isinstance(error, ProviderError):
        if error.kind == "bad_request":
            return Failure(400, "invalid_request", str(error))
        if error.kind == "rate_limit":
            return _rate_limited(error, [error])
        return Failure(502, "upstream", str(error))
    if isinstance(error, AllModelsFailed):
        attempts = [e for e in error.exceptions if isinstance(e, ProviderError)]
        if attempts and all(e.kind == "rate_limit" for e in attempts):
            return _rate_limited(error, attempts)
        return Failure(502, "upstream", str(error))
    if isinstance(error, ConfigError):
        return Failure(500, "server", str(error))
    return Failure(500, "server", str(error))


_SDK_RETRY_SECONDS = 60
"""The longest retry-after the official SDKs wait for; past it they retry within seconds anyway."""


def _retry_is_futile(error: BudgetExceeded, reopens: int | None) -> bool:
    """Whether the SDKs' own retries of a 429 (two by default, within seconds) cannot pass: the spend
    alone leaves too little, so no call in flight that ends frees enough, and the window does not
    reopen within the wait an SDK honours. Without `x-should-retry: false` the SDKs retried such a
    refusal, and the caller waited seconds for the same answer."""
    return error.spent + error.requested > error.limit and (reopens is None or reopens > _SDK_RETRY_SECONDS)


def _rate_limited(error: GearshiftError, attempts: list[ProviderError]) -> Failure:
    """Every model the call tried was rate limited: a 429 with the soonest retry-after a provider
    gave, so that the SDKs wait that long before they retry (a 502 was retried at once, and its
    retry-after was lost)."""
    waits = [e.retry_after for e in attempts if e.retry_after is not None]
    headers = {"retry-after": str(max(1, math.ceil(min(waits))))} if waits else {}
    return Failure(429, "rate_limited", str(error), headers=headers)


_INDEXED_PATH = re.compile(r"^([A-Za-z_]+\[\d+\](?:\.[A-Za-z_]+(?:\[\d+\])?)*)[ :]")


def _param(message: str) -> str | None:
    # Wire-format errors start with the field's path in quotes: "'messages[2].content': ...", and a
    # tool the core refuses with its place: "tools[0] 'f' is malformed: ..." (its param was null).
    if message.startswith("'") and "'" in message[1:]:
        return message[1 : message.index("'", 1)]
    indexed = _INDEXED_PATH.match(message)
    return indexed[1] if indexed else None


def _reopens_in(window: str | None, timezone: str, now: float) -> int | None:
    """Whole seconds until a calendar window starts afresh; None for lifetime and rolling windows,
    which never reopen at one moment."""
    if window not in ("day", "month"):
        return None
    from ..budgets._limits import Window

    spec = Window.parse(window)
    start = spec.start(now, timezone)
    # Past the end of this window by a margin no DST shift can undo, then back to that window's start.
    ahead = start + (36 * 3600 if window == "day" else 32 * 86400)
    return max(1, math.ceil(spec.start(ahead, timezone) - now))
