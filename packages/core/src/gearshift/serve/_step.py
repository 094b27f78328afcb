"""The `StepContext` of a proxied call: the request's `model` alias, `x-gearshift-*` headers, the
proxy key, and what the message history shows, read by the core's `context_from_messages`. Pure.

The request's `model` chooses how to route: `auto` lets gearshift decide, `tier-N` caps the decision
at tier N, and a registry model id forces that model (with its fallback chain).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .._context import CallerHints, StepContext, StepType
from .._errors import InvalidRequestError
from .._messages import ChatRequest
from .._models import ModelRegistry
from ..signals._run_context import context_from_messages
from ._access import ProxyKey

__all__ = ["AUTO", "HEADER_PREFIX", "CallerIdentity", "gearshift_headers", "model_aliases", "step_context"]

AUTO = "auto"
HEADER_PREFIX = "x-gearshift-"
_TIER = re.compile(r"^tier-(\d+)$")
_BUDGET_KEY = re.compile(r"^[A-Za-z0-9_.:\-/@]{1,200}$")
_RAW_PREFIX = HEADER_PREFIX.encode("latin-1")


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """What the request body says about its caller: OpenAI's `user` or a `metadata` agent id."""

    user: str | None = None
    metadata: Mapping[str, str] | None = None


def model_aliases(registry: ModelRegistry) -> tuple[str, ...]:
    """Every `model` a request may name: `auto`, one `tier-N` per tier, then the registry's ids."""
    return (AUTO, *(f"tier-{tier}" for tier in registry.tiers), *registry.ids)


def gearshift_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The `x-gearshift-*` headers of an ASGI request's raw (lower-case) header list, read in one
    pass; of a repeated header the first value counts, as for Starlette's `Headers.get`. Looking each
    one up in `Headers` scanned every header of the request once per name."""
    found: dict[str, str] = {}
    for name, value in raw:
        if name.startswith(_RAW_PREFIX):
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def step_context(
    request: ChatRequest,
    *,
    model: str,
    registry: ModelRegistry,
    headers: Mapping[str, str],
    key: ProxyKey | None = None,
    caller: CallerIdentity = CallerIdentity(),
) -> StepContext:
    """The context the router gets for one proxied request; bad values raise `InvalidRequestError`
    naming the header or field. `headers` must have lower-case names."""

    def header(name: str) -> str | None:
        value = headers.get(HEADER_PREFIX + name)
        return value.strip() or None if value is not None else None

    force, cap = _model_hint(model, registry)
    min_tier = _int(header("min-tier"), "min-tier", minimum=0)
    max_tier = _int(header("max-tier"), "max-tier", minimum=0)
    if cap is not None:
        max_tier = cap if max_tier is None else min(cap, max_tier)
    max_cost = header("max-cost-usd")
    try:
        cost = None if max_cost is None else float(max_cost)
    except ValueError:
        cost = math.nan
    if cost is not None and not (math.isfinite(cost) and cost >= 0):
        raise InvalidRequestError(
            f"header {HEADER_PREFIX}max-cost-usd: must be a number >= 0, got {max_cost!r}"
        )
    try:
        hints = CallerHints(force_model=force, min_tier=min_tier, max_tier=max_tier, max_cost_usd=cost)
    except InvalidRequestError as exc:
        raise InvalidRequestError(
            f"headers {HEADER_PREFIX}min-tier/max-tier or model {model!r}: {exc}"
        ) from None
    agent = header("agent-id") or _caller_agent(caller)
    if key is not None and key.agent:
        agent = key.agent  # an agent's key is that agent, whatever the headers say
    keys = [k.strip() for k in (header("budget-keys") or "").split(",") if k.strip()]
    for budget_key in keys:
        if not _BUDGET_KEY.match(budget_key):
            raise InvalidRequestError(f"header {HEADER_PREFIX}budget-keys: {budget_key!r} is not a valid key")
    if key is not None:
        keys = [*key.charged_keys, *(k for k in keys if k not in key.charged_keys)]
    return context_from_messages(
        request.messages,
        has_tools=bool(request.tools),
        agent_id=agent,
        run_id=header("run-id"),
        step_type=_step_type(header("step-type")),
        hints=hints,
        budget_keys=keys,
        expected_steps=_int(header("expected-steps"), "expected-steps", minimum=1),
        metadata={"proxy_key": key.name} if key is not None else None,
    )


def _model_hint(model: str, registry: ModelRegistry) -> tuple[str | None, int | None]:
    if model == AUTO:
        return None, None
    tier = _TIER.match(model)
    if tier is not None:
        return None, int(tier[1])
    registry[model]  # raises UnknownModelError naming the known ids
    return model, None


def _caller_agent(caller: CallerIdentity) -> str | None:
    metadata = caller.metadata or {}
    return metadata.get("agent_id") or metadata.get("user_id") or caller.user or None


def _step_type(value: str | None) -> str | None:
    if value is None:
        return None
    StepType.parse(value, where=f"header {HEADER_PREFIX}step-type")
    return value


def _int(value: str | None, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise InvalidRequestError(
            f"header {HEADER_PREFIX}{name}: must be an integer >= {minimum}, got {value!r}"
        )
    return number
