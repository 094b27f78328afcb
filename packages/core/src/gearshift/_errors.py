"""Every error gearshift raises, under one root.

```
GearshiftError
├── ConfigError               bad gearshift.toml or Python config: names the file, key and why
├── InvalidRequestError       a request gearshift cannot route (empty messages, bad tool schema,
│   │                         unknown model id); also a ValueError
│   └── UnknownModelError     a model id that is not in the registry; also a KeyError
├── RoutingError              no decision could be made
│   ├── NoEligibleModel       every model was ruled out; says why for each
│   └── BudgetExceeded        a hard budget limit refuses the call (limit, spent, requested)
├── ProviderError             one provider call failed (model id, kind, status, retry-after)
└── AllModelsFailed           every model of the chain failed; an ExceptionGroup of the attempts
```

SDK exceptions are translated into `ProviderError` at the provider boundary. No message here ever
carries an API key: providers pass their error text through `redact` before raising.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Literal

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import ExceptionGroup

__all__ = [
    "AllModelsFailed",
    "BudgetExceeded",
    "ConfigError",
    "GearshiftError",
    "InvalidRequestError",
    "NoEligibleModel",
    "ProviderError",
    "ProviderErrorKind",
    "RoutingError",
    "UnknownModelError",
    "redact",
]


class GearshiftError(Exception):
    """Root of every error gearshift raises."""


class ConfigError(GearshiftError):
    """Configuration that gearshift cannot use.

    `source` is the file (or "<python>" for config built in code), `key` the dotted path of the
    offending setting, and the message says what is wrong with it.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        where = ", ".join(part for part in (source, f"key '{key}'" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)


class InvalidRequestError(GearshiftError, ValueError):
    """A request that cannot be routed as given (the message says which part and why)."""


class UnknownModelError(InvalidRequestError, KeyError):
    """A model id that is not in the registry."""

    def __init__(self, model_id: str, known: Iterable[str]) -> None:
        self.model_id = model_id
        known_ids = sorted(known)
        super().__init__(
            f"unknown model id '{model_id}'; the registry has: {', '.join(known_ids) or 'no models'}"
        )

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0])


class RoutingError(GearshiftError):
    """No routing decision could be made."""


class NoEligibleModel(RoutingError):
    """Every model in the registry was ruled out; `why` maps each model id to its reason."""

    def __init__(self, why: dict[str, str]) -> None:
        self.why = dict(why)
        details = "; ".join(f"{model}: {reason}" for model, reason in sorted(self.why.items()))
        super().__init__(f"no model can serve this request ({details or 'the registry is empty'})")


class BudgetExceeded(RoutingError):
    """A hard budget limit refuses the call."""

    def __init__(
        self,
        *,
        limit_name: str,
        limit: float,
        spent: float,
        requested: float,
        reserved: float = 0.0,
        unit: str = "usd",
    ) -> None:
        self.limit_name = limit_name
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.unit = unit
        fmt = _money if unit == "usd" else _tokens
        super().__init__(
            f"budget '{limit_name}' would be exceeded: limit {fmt(limit)}, spent {fmt(spent)}, "
            f"reserved {fmt(reserved)}, this call needs {fmt(requested)}"
        )


def _money(value: float) -> str:
    return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def _tokens(value: float) -> str:
    return f"{int(value)} tokens"


ProviderErrorKind = Literal[
    "rate_limit", "server", "timeout", "connection", "stream", "auth", "bad_request", "other"
]


class ProviderError(GearshiftError):
    """One call to one provider failed.

    `kind` classifies the failure; every kind except `bad_request` lets the router fall back to the
    next model of the chain. `retry_after` is the provider's advice in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        model_id: str,
        kind: ProviderErrorKind,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.model_id = model_id
        self.kind: ProviderErrorKind = kind
        self.status_code = status_code
        self.retry_after = retry_after
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{model_id}: {kind}{status}: {message}")

    @property
    def allows_fallback(self) -> bool:
        """Whether another model may be tried: a malformed request would fail everywhere."""
        return self.kind != "bad_request"


class AllModelsFailed(GearshiftError, ExceptionGroup):  # type: ignore[type-arg,misc,unused-ignore]
    """Every model of the decision's chain failed; the group holds one `ProviderError` per attempt."""

    def __new__(cls, message: str, errors: Sequence[ProviderError]) -> AllModelsFailed:
        return super().__new__(cls, message, list(errors))

    def __init__(self, message: str, errors: Sequence[ProviderError]) -> None:
        super().__init__(message, list(errors))

    def derive(self, excs: Sequence[Exception]) -> AllModelsFailed:
        return AllModelsFailed(self.message, [e for e in excs if isinstance(e, ProviderError)])

    def __str__(self) -> str:
        attempts = "; ".join(str(e) for e in self.exceptions)
        return f"{self.message}: {attempts}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (API keys and the like) found in `text` with `***`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
