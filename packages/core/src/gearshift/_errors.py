"""Every error gearshift raises, under one root.

```
GearshiftError
├── ConfigError               bad gearshift.toml or Python config: names the file, key and why
├── InvalidRequestError       a request gearshift cannot route (empty messages, bad tool schema,
│   │                         unknown model id); also a ValueError
│   └── UnknownModelError     a model id that is not in the registry; also a KeyError
├── RoutingError              no decision could be made
│   ├── NoEligibleModel       every model was ruled out; says why for each
│   └── BudgetExceeded        a budget limit refuses the call (limit, key, spent, reserved, requested)
├── LedgerUnavailable         the budget ledger's store cannot be reached (names it, never its password)
├── ProviderError             one provider call failed (model id, kind, status, retry-after)
├── AllModelsFailed           every model of the chain failed; an ExceptionGroup of the attempts
└── EmptyAnswer               a step handed up came back with nothing, and no model was left to ask
```

SDK exceptions are translated into `ProviderError` at the provider boundary. No message here ever
carries an API key: providers pass their error text through `redact` before raising.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from ._url_secrets import mask_text, mask_url

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import ExceptionGroup

__all__ = [
    "AllModelsFailed",
    "BudgetExceeded",
    "ConfigError",
    "EmptyAnswer",
    "GearshiftError",
    "InvalidRequestError",
    "LedgerUnavailable",
    "NoEligibleModel",
    "ProviderError",
    "ProviderErrorKind",
    "RoutingError",
    "UnknownModelError",
    "redact",
]


class GearshiftError(Exception):
    """Root of every error gearshift raises.

    `request_id` is set on the error that ends a routed call once the call was planned: the id its
    decision log records (decision, attempts, budget refusal) are written under, as
    `RoutedResponse.request_id` is for an answer. None for errors raised before any plan (a bad
    request, a bad config).
    """

    request_id: str | None = None


class ConfigError(GearshiftError):
    """Configuration that gearshift cannot use.

    `source` is the file (or "<python>" for config built in code), `key` the dotted path of the
    offending setting, `line` its line in the file when known, and the message says what is wrong
    with it. A file with several problems raises one error listing them all: `problems` holds one
    `ConfigError` per problem (just this one when there is one), and `key` and `line` are the first's.
    """

    def __init__(
        self, message: str, *, source: str | None = None, key: str | None = None, line: int | None = None
    ) -> None:
        self.source = source
        self.key = key
        self.line = line
        self.reason = message
        self.problems: tuple[ConfigError, ...] = (self,)
        where = _where(source, line, key)
        super().__init__(f"{where}: {message}" if where else message)

    @classmethod
    def listing(cls, problems: Sequence[ConfigError]) -> ConfigError:
        """One error for every problem found in one source, each on its own line with its line and key."""
        if len(problems) == 1:
            return problems[0]
        first = problems[0]
        lines = [f"  {_where(None, e.line, e.key)}: {e.reason}" for e in problems]
        error = cls(f"{len(problems)} problems", source=first.source)
        error.key, error.line, error.problems = first.key, first.line, tuple(problems)
        head = f"{first.source}: {len(problems)} problems" if first.source else f"{len(problems)} problems"
        error.args = ("\n".join([head, *lines]),)
        return error


def _where(source: str | None, line: int | None, key: str | None) -> str:
    """`gearshift.toml, line 4, key 'models[0].tier'`, leaving out what is not known."""
    parts = (source, None if line is None else f"line {line}", None if key is None else f"key '{key}'")
    return ", ".join(part for part in parts if part)


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


_LOWER_MAX_TOKENS = "lower max_tokens"
_SHORTEN_PROMPT = "shorten the prompt"


class BudgetExceeded(RoutingError):
    """A budget limit refuses the call: what it allows, what is spent and held, what the call needs.

    `limit_name` names the limit, `key` the spend key it was checked on (`agent:researcher`),
    `unit` is `usd` or `tokens`. `reserved` is what calls in flight hold against the same key.
    """

    def __init__(
        self,
        *,
        limit_name: str,
        limit: float,
        spent: float,
        requested: float,
        reserved: float = 0.0,
        unit: str = "usd",
        key: str | None = None,
        window: str | None = None,
    ) -> None:
        self.limit_name = limit_name
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.unit = unit
        self.key = key
        self.window = window
        fmt = _money if unit == "usd" else _tokens
        on_key = f" on key '{key}'" if key and key != limit_name else ""
        windowed = bool(window) and window != "lifetime"
        per = f" per {window}" if windowed else ""
        left = max(0.0, limit - spent - reserved)
        advice = f"{_LOWER_MAX_TOKENS}, route to a cheaper model or raise the limit"
        if windowed:
            advice += ", or wait for the window to roll over"
        super().__init__(
            f"budget '{limit_name}'{on_key} refuses this call: limit {fmt(limit)}{per}, spent "
            f"{fmt(spent)}, held by calls in flight {fmt(reserved)}, left {fmt(left)}; this call "
            f"needs up to {fmt(requested)}. To go on: {advice}"
        )

    def for_uncapped_call(self) -> BudgetExceeded:
        """This refusal, for a call that set no `max_tokens`: its output was already capped to what the
        budget allows, so the advice is to shorten the prompt rather than lower a setting never given.
        The same exception is returned."""
        self.args = (
            self.args[0].replace(f"To go on: {_LOWER_MAX_TOKENS}", f"To go on: {_SHORTEN_PROMPT}", 1),
        )
        return self

    def at_step(self, step: str) -> BudgetExceeded:
        """This refusal, its message led by the agent, thread and step it stopped: `step` is what
        `StepContext.describe` says of it.

        The same exception is returned (type, limit, spent, requested), so an agent developer's
        `except BudgetExceeded` still catches it; every adapter words the stop the same way through it.
        """
        self.args = (f"{step} was stopped by its budget: {self.args[0]}",)
        return self


class LedgerUnavailable(GearshiftError):
    """The budget ledger's store cannot be reached, so spend can be neither checked nor recorded.

    Calls are refused rather than let through unlimited; `budgets.fail_open = true` lets them go
    ahead unaccounted instead (`fail_open` says it is on: then only what needs the store's figures,
    such as `status`, raises this). `url` is the store's URL with any password masked; the password
    never shows in the message either, raw or percent-decoded.
    """

    def __init__(self, url: str, reason: str, *, fail_open: bool = False) -> None:
        self.url = mask_url(url)
        self.reason = mask_text(reason, [url])
        self.fail_open = fail_open
        advice = (
            "budgets.fail_open is on, but this needs the store's own figures: try again once it answers"
            if fail_open
            else "calls are refused while it is down (set budgets.fail_open = true to let them through "
            "unaccounted)"
        )
        super().__init__(f"{self.summary}; {advice}")

    @property
    def summary(self) -> str:
        """What is wrong, without the advice about `fail_open` (for when it is already on)."""
        return f"the budget ledger at {self.url} cannot be reached ({self.reason})"


def _money(value: float) -> str:
    """`$0.60`, `$12.00`, `$0.000125`: cents always shown, sub-cent digits when there are any."""
    digits = f"{value:.6f}".rstrip("0")
    whole, _, cents = digits.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _tokens(value: float) -> str:
    return f"{int(value)} tokens"


ProviderErrorKind = Literal[
    "rate_limit", "server", "timeout", "connection", "stream", "auth", "bad_request", "other"
]


class ProviderError(GearshiftError):
    """One call to one provider failed.

    `kind` classifies the failure; every kind except `bad_request` lets the router fall back to the
    next model of the chain. `retry_after` is the provider's advice in seconds, when it gave one.
    `accepted` says the provider took the call (its 200 came) and worked on it before it failed: an
    answer that could not be read, or one that finished with an error, was likely billed. `received`
    says the provider had the whole request when the connection closed with no status (it hung up
    before answering, kind `connection`): it may have processed it, and billed it, as after a timeout.
    `reported_tokens` are the counts, by `Usage` field name, the provider reported before it failed
    (Anthropic's `message_start` says what the prompt costs): the router charges them rather than its
    own estimate. `deployment` names the deployment that failed (`<model id>@<provider>`) when the model
    has several: the router sets it, and `AllModelsFailed` names the failure by it.
    """

    deployment: str | None = None

    def __init__(
        self,
        message: str,
        *,
        model_id: str,
        kind: ProviderErrorKind,
        status_code: int | None = None,
        retry_after: float | None = None,
        accepted: bool = False,
        received: bool = False,
        reported_tokens: Mapping[str, int] | None = None,
    ) -> None:
        self.model_id = model_id
        self.reason = message
        self.kind: ProviderErrorKind = kind
        self.status_code = status_code
        self.retry_after = retry_after
        self.accepted = accepted
        self.received = received
        self.reported_tokens: dict[str, int] = dict(reported_tokens or {})
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{model_id}: {kind}{status}: {message}")

    @property
    def allows_fallback(self) -> bool:
        """Whether another model may be tried: a malformed request would fail everywhere."""
        return self.kind != "bad_request"


class AllModelsFailed(GearshiftError, ExceptionGroup):  # type: ignore[type-arg,misc,unused-ignore]
    """Every model of the decision's chain failed; the group holds one `ProviderError` per attempt.

    Its message leads with the causes, each once with the models it stopped ("all 2 models tried for
    this request failed: no API key for provider 'openai': set ... [auth: gpt-5-nano, gpt-5]"). The
    attempts keep no traceback of their own: each is a provider's translated error whose message says
    everything, and a traceback apiece made an uncaught failure print hundreds of lines.
    """

    def __new__(cls, message: str, errors: Sequence[ProviderError]) -> AllModelsFailed:
        return super().__new__(cls, message, list(errors))

    def __init__(self, message: str, errors: Sequence[ProviderError]) -> None:
        for error in errors:
            error.__traceback__ = None
        super().__init__(message, list(errors))

    def derive(self, excs: Sequence[Exception]) -> AllModelsFailed:
        return AllModelsFailed(self.message, [e for e in excs if isinstance(e, ProviderError)])

    def __str__(self) -> str:
        causes: dict[str, list[str]] = {}
        for error in self.exceptions:
            status = f" (HTTP {error.status_code})" if error.status_code is not None else ""
            causes.setdefault(error.reason, []).append(
                f"{error.kind}{status}: {error.deployment or error.model_id}"
            )
        parts = [f"{reason} [{', '.join(_merged(models))}]" for reason, models in causes.items()]
        return f"{self.message}: {'; '.join(parts)}"


def _merged(attempts: list[str]) -> list[str]:
    """`["auth: a", "auth: b"]` -> `["auth: a, b"]`: the kind once per run of attempts that share it."""
    merged: list[str] = []
    last = None
    for attempt in attempts:
        kind, _, model = attempt.partition(": ")
        if kind == last:
            merged[-1] += f", {model}"
        else:
            merged.append(attempt)
            last = kind
    return merged


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (API keys and the like) found in `text` with `***`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class EmptyAnswer(GearshiftError):
    """The stronger model a step was handed up to answered with nothing (no text, no tool call), and no
    model above it could be asked: the message names the model, its tier, why none was left, and what
    its answer cost (it is charged like any answer)."""
