"""`ClassifierPolicy`: a small model reads the request and names the tier that should answer it.

```toml
[routing]
policy = "classifier"

[routing.classifier]
model = "gpt-5-nano"            # the registry model that classifies
labels = { easy = 1, medium = 2, hard = 3 }   # reply word -> tier (default: the tier numbers)
timeout = 3.0                   # seconds; then the default policy decides
speculative = false             # true: start the cheapest model while the classifier reads
```

Deciding stays pure. Before the router plans a call it awaits `aprepare`, which asks the classifier
model through the router itself (so the call is charged to the step's budget keys and its attempt is
recorded, in the decision log and in the answer's `attempts`) and writes the verdict into the step
context's metadata; `decide` reads it there. A reply that names no tier, a timeout or an error leaves
the decision to the fallback policy (the default one), and the reasons say why. Verdicts are kept in an
LRU cache keyed by what the classifier is shown (its model and prompt, with the request's user text),
so a prompt seen again, or the next step of an agent's turn (the same user words, one more tool call
and result), costs no second call; a call that finds the same classification in flight waits for it
(see `_verdicts`), and when its timeout runs out first, its reason says it waited for a concurrent
call's classification and asked none itself.
`Router.decide` and `Router.adecide`, which call no model, always fall back and say so.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .._context import CallerHints, StepContext
from .._decision import Decision
from .._errors import GearshiftError
from .._messages import ChatRequest, Message
from ..config._config_errors import settings_error
from ..routing._records import Attempt
from ..routing._routed import RoutedResponse
from ..routing._spend_tally import watching
from ._protocol import Policy, RouteInput, make_decision
from ._verdicts import VerdictStore, verdict_key


class Completer(Protocol):
    """What the classifier needs of the router: a routed, budgeted, recorded completion."""

    async def acomplete(
        self, request: ChatRequest, context: StepContext | None = None, *, self_escalation: bool | None = None
    ) -> RoutedResponse:
        """Route `request` and answer it."""
        ...


__all__ = ["CLASSIFICATION_KEY", "ClassifierConfig", "ClassifierPolicy"]

CLASSIFICATION_KEY = "gearshift.classification"
"""The step-context metadata key holding the classifier's verdict: {"tier": int | None, "reason": str}."""

_DEFAULT_PROMPT = (
    "You route requests to language models. Tiers: {tiers}. Higher tiers are stronger and pricier. "
    "Name the lowest tier that will answer this request well. Reply with the tier's label only.\n\n"
    "Request:\n{request}"
)
_REQUEST_CHARS = 4000


class ClassifierConfig(BaseModel):
    """Settings of the classifier policy (the `[routing.classifier]` table of gearshift.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, description="Registry id of the model that classifies.")
    prompt: str = Field(
        default=_DEFAULT_PROMPT,
        description="The classification prompt; `{tiers}` becomes the labels and their tiers, "
        "`{request}` the request's user text, at most 4,000 characters of it: the latest user message "
        "whole (its start and end when it is longer), after the end of the earlier ones.",
    )
    labels: dict[str, int] | None = Field(
        default=None, description="Reply label -> tier. Unset: each tier's number is its label."
    )
    pattern: str | None = Field(
        default=None,
        description="A regular expression whose first group is the label in the reply. Unset: the reply "
        "must lead with a label (or a tier's number), once markdown, quotes, a JSON wrapper and a 'tier' "
        "or 'label' prefix are taken off.",
    )
    timeout: float = Field(
        default=5.0, gt=0, allow_inf_nan=False, description="Seconds the classifier may take."
    )
    max_tokens: int = Field(default=16, gt=0, description="Output cap of the classification call.")
    cache_size: int = Field(
        default=1024, ge=0, description="Verdicts kept, by what the classifier is shown (0: none)."
    )
    speculative: bool = Field(
        default=False,
        description="Start the cheapest eligible model while the classifier reads; keep its answer when "
        "the classifier picks its tier, cancel it (and pay what it cost) when it picks a stronger one.",
    )

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        if "{request}" not in value:
            raise ValueError("must contain {request}, where the request's text goes")
        try:
            value.format(tiers="", request="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"has a placeholder other than {{tiers}} and {{request}}: {exc}") from None
        return value

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        if compiled.groups < 1:
            raise ValueError("needs one group, (...), around the label")
        return value

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, source: str = "<python>", key: str = "routing.classifier"
    ) -> ClassifierConfig:
        """Validate user-written settings; a `ConfigError` names the offending key and why."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise settings_error(exc, cls, source=source, key=key, noun="the classifier") from None


class ClassifierPolicy:
    """Routes to the tier a classifier model names; `fallback` decides when it names none.

    `tiers` are the registry's tiers (the default labels). Pure in `decide`; the classification call
    happens in `aprepare`, which the router awaits before planning a call.
    """

    name = "classifier"

    def __init__(self, config: ClassifierConfig, fallback: Policy, tiers: tuple[int, ...]) -> None:
        self.config = config
        self.fallback = fallback
        self._tiers = tuple(sorted(set(tiers)))
        labels = config.labels if config.labels is not None else {str(tier): tier for tier in tiers}
        self.labels = {label.casefold(): tier for label, tier in labels.items()}
        self.speculative = config.speculative
        self._pattern = re.compile(config.pattern) if config.pattern else None
        self._longest_first = sorted(self.labels, key=len, reverse=True)
        shown = ", ".join(f"{label} = tier {tier}" for label, tier in labels.items())
        self._tiers_text = shown
        self._verdicts = VerdictStore(config.cache_size)

    def __repr__(self) -> str:
        return f"ClassifierPolicy(model={self.config.model!r}, fallback={self.fallback.name!r})"

    def parse(self, reply: str) -> int | None:
        """The tier a reply names, or None when it names none.

        Without a `pattern` the reply must lead with a label (any case), once a code fence, a JSON
        wrapper (its "label" or "tier" field, else its first value), quotes or emphasis and a "tier" or
        "label" prefix are taken off; a tier's number names it too. A reply that only mentions a label
        later ("I can't help with 1 request like that") names none.
        """
        if self._pattern is not None:
            found = self._pattern.search(reply)
            return None if found is None else self.labels.get((found.group(1) or "").strip().casefold())
        text = _PREFIX.sub("", _unwrapped(reply).strip(_MARKUP).casefold(), count=1)
        for label in self._longest_first:
            if text.startswith(label) and not _continues_word(text[len(label) :]):
                return self.labels[label]
        number = re.match(r"\d+", text)
        if number is not None and not _continues_word(text[number.end() :]):
            tier = int(number.group())
            return tier if tier in self._tiers else None
        return None

    def decide(self, route: RouteInput) -> Decision:
        """The cheapest eligible model of the classified tier, else the fallback's decision."""
        verdict = route.context.metadata.get(CLASSIFICATION_KEY)
        if not isinstance(verdict, Mapping):
            verdict = {"tier": None, "reason": "no classification (this decision calls no model)"}
        tier, reason = verdict.get("tier"), str(verdict.get("reason"))
        if isinstance(tier, int):
            spec = route.cheapest_in_tier(tier)
            picked = f"cheapest eligible model of tier {spec.tier}: {spec.id}"
            if spec.tier != tier:
                picked = f"tier {tier} has no eligible model; nearest is tier {spec.tier}: {spec.id}"
            return make_decision(
                route, spec, policy=self.name, reasons=(reason, picked), scores={"tier": tier}
            )
        decision = self.fallback.decide(route)
        lead = f"{reason}: the {self.fallback.name} policy decides"
        return replace(decision, reasons=(lead, *decision.reasons))

    async def aprepare(
        self, router: Completer, request: ChatRequest, context: StepContext
    ) -> tuple[StepContext, tuple[Attempt, ...]]:
        """The context with the classifier's verdict in its metadata, and the classification's attempts.

        Skipped (context unchanged) for the classification call itself and when a verdict is already
        there, and skipped without a call when the caller's hints leave nothing to choose: a forced
        model, or a tier range holding one tier (MCP's `escalate` asks the top tier only). Never raises
        for the classifier's own failures: they become the verdict's reason.
        """
        if CLASSIFICATION_KEY in context.metadata:
            return context, ()
        unneeded = self._foregone(context.hints)
        if unneeded is not None:
            return _with(context, unneeded), ()
        model = self.config.model
        shown = self.config.prompt.format(tiers=self._tiers_text, request=_request_text(request))
        key = verdict_key(model, shown)
        deadline = time.monotonic() + self.config.timeout
        waited = 0.0  # seconds spent waiting for concurrent calls' classifications
        while True:
            tier = self._verdicts.kept(key)
            if tier is not None:
                reason = f"classifier {model} (cached): tier {tier}"
                return _with(context, {"tier": tier, "reason": reason}), ()
            flying = self._verdicts.in_flight(key)
            if flying is None:
                break
            # Another call is asking the same question: wait for its verdict (within this call's own
            # timeout) rather than pay for it again. It pays; a verdict it does not get (it failed,
            # was cancelled or named no tier) leaves this call to ask for itself.
            began = time.monotonic()
            try:
                tier = await asyncio.wait_for(asyncio.shield(flying), deadline - began)
            except asyncio.TimeoutError:
                # This call asked no classifier and lists no attempt: its reason must not read as
                # a slow classifier call of its own, but send the reader to the call it waited for.
                reason = (
                    f"classifier {model} not asked: a concurrent call's classification of the same "
                    f"prompt was still running when this call's {self.config.timeout:g} s ran out"
                )
                return _with(context, {"tier": None, "reason": reason}), ()
            waited += time.monotonic() - began
            if tier is not None:
                reason = f"classifier {model} (asked by a concurrent call): tier {tier}"
                return _with(context, {"tier": tier, "reason": reason}), ()
        with self._verdicts.asking(key) as flight:
            verdict, attempts = await self._ask(router, shown, context, deadline, waited)
            flight.tier = verdict["tier"]
        return _with(context, verdict), attempts

    async def _ask(
        self, router: Completer, shown: str, context: StepContext, deadline: float, waited: float
    ) -> tuple[dict[str, Any], tuple[Attempt, ...]]:
        """The classifier's verdict on `shown` and the call's attempts; never raises for its failures.
        `waited` is how long of the call's timeout went on waiting for concurrent classifications."""
        model = self.config.model
        asked = ChatRequest(messages=(Message.user(shown),), max_tokens=self.config.max_tokens)
        step = replace(
            context,
            hints=CallerHints(force_model=model),
            metadata={
                **context.metadata,
                CLASSIFICATION_KEY: {"tier": None, "reason": "classification call"},
            },
        )
        started = time.monotonic()
        # A call that times out or fails leaves no answer to list its attempts: they are watched as
        # they are recorded, so what the provider was paid for a cancelled call is in the step's answer.
        seen: list[Attempt] = []
        try:
            with watching(seen.append):
                answer = await asyncio.wait_for(
                    router.acomplete(asked, step, self_escalation=False), deadline - started
                )
        except asyncio.TimeoutError:
            reason = f"classifier {model} timed out after {self.config.timeout:g} s"
            if waited:  # the call's own ask had only what the wait left of the timeout
                reason += (
                    f", {waited:.3g} s of it waiting for a concurrent call's classification of the "
                    "same prompt, which gave no verdict"
                )
            return {"tier": None, "reason": reason}, tuple(seen)
        except GearshiftError as error:
            reason = f"classifier {model} failed ({type(error).__name__}: {error})"
            return {"tier": None, "reason": reason}, tuple(seen)
        reply = answer.response.text.strip()
        tier = self.parse(reply)
        ms = (time.monotonic() - started) * 1000
        if tier is None:
            shown_reply = reply if len(reply) <= 60 else reply[:57] + "..."
            reason = f"classifier {model} replied {shown_reply!r}, which names no tier"
            return {"tier": None, "reason": reason}, answer.attempts
        reason = f"classifier {model} ({ms:.0f} ms, ${answer.cost_usd:.6f}): {reply!r} -> tier {tier}"
        return {"tier": tier, "reason": reason}, answer.attempts

    def _foregone(self, hints: CallerHints) -> dict[str, Any] | None:
        """The verdict when no reply could change the decision (the caller's hints allow one model or
        one tier), else None."""
        if hints.force_model is not None:
            reason = f"the caller forced model '{hints.force_model}': no classification needed"
            return {"tier": None, "reason": reason}
        low, high = hints.min_tier, hints.max_tier
        if low is None and high is None:
            return None
        allowed = [t for t in self._tiers if (low is None or t >= low) and (high is None or t <= high)]
        if len(allowed) > 1:
            return None
        if not allowed:  # planning refuses the call (no eligible model) and says why
            return {"tier": None, "reason": "the caller allows no tier: no classification needed"}
        reason = f"tier {allowed[0]} is the only one the caller allows: no classification needed"
        return {"tier": allowed[0], "reason": reason}


_MARKUP = " \t\r\n*_`'\"#>.:,;!()[]"
_PREFIX = re.compile(r"^(?:tier|label)\s*[:=-]?\s*")
_FENCE = re.compile(r"^```[\w-]*\s*(.*?)\s*```$", re.DOTALL)


def _unwrapped(reply: str) -> str:
    """The reply without a code fence around it, and a JSON reply's label: its "label" or "tier"
    field, else its first value (a JSON string or number is itself)."""
    text = reply.strip()
    fenced = _FENCE.match(text)
    if fenced is not None:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        fields = {str(key).casefold(): item for key, item in value.items()}
        named = [fields[key] for key in ("label", "tier") if key in fields]
        value = next(iter(named or list(value.values())), "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else json.dumps(value)


def _continues_word(rest: str) -> bool:
    """Whether a label matched just before `rest` runs on into a longer word or number ("1" in "12",
    "1.5")."""
    decimal = rest[:1] in (".", ",") and rest[1:2].isdigit()
    return bool(rest) and (rest[0].isalnum() or rest[0] == "_" or decimal)


def _request_text(request: ChatRequest) -> str:
    """The user text the classifier reads: the latest user message, which is the one to answer, whole
    when it fits (else its start and its end), after as much of the earlier ones' end as fits."""
    said = [m.text for m in request.messages if m.role == "user"]
    latest = said[-1] if said else ""
    if len(latest) > _REQUEST_CHARS:
        half = _REQUEST_CHARS // 2
        return f"{latest[:half]}\n[...]\n{latest[-half:]}"
    room = _REQUEST_CHARS - len(latest) - 2
    earlier = "\n\n".join(said[:-1])[-room:] if room > 0 and len(said) > 1 else ""
    return f"{earlier}\n\n{latest}" if earlier else latest


def _with(context: StepContext, verdict: dict[str, Any]) -> StepContext:
    return replace(context, metadata={**context.metadata, CLASSIFICATION_KEY: verdict})
