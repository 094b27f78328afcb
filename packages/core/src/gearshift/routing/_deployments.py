"""Deployments: several places serving one model id, chosen by live health and latency.

A model may be served by more than one deployment (two base URLs, two keys, two regions): its own
`provider` and `model`, then each of `ModelSpec.deployments`. `DeploymentHealth` keeps, per deployment,
exponentially weighted moving averages (EWMA) of its error rate and of its latency, two kinds kept
apart (`Latency`): the time to the first event of a stream, and the whole time of an unstreamed call.
They are never mixed: an unstreamed call's time is mostly its answer's length (a long answer is slow
on the fastest deployment), so one deployment that served long unstreamed answers looked slower than
one that streamed, however fast its first token. A call ranks deployments by its own kind, and a
deployment not yet measured in that kind goes first, so that it gets measured; a probe's one-token
'ping' is measured in neither.

A circuit breaker: after `failures` failures in a row the deployment is tripped for `open_seconds`
(doubling on each failed probe, capped at `max_open_seconds`), then it must answer a probe (a
one-token call) before real traffic goes to it again. A failure that says when to come back (a 429's
`retry-after`) trips it at once, for that long. One caller probes a due deployment; the others keep
away from it until the probe answers, as a half-open breaker does, and when every deployment is
tripped they wait for the probe (`probe_in_flight`) rather than call the deployment it is testing.
Calls that set out before the trip and fail after it add nothing: the open period grows with failed
probes, not with the calls that were in flight. Calls try healthy deployments fastest first, with the
error rate as a penalty. A deployment's first answer is its warm-up and is not measured: it pays once
for what later calls reuse (the SDK's import, its client, the connection: seconds for a process's
first call, against milliseconds after), and that one sample ranked it last for good, since a
deployment ranked last gets no calls to correct its average.

`prefer_latency` is the pure step behind `routing.prefer = "latency"`: among the models of the tier the
policy chose, move to the one whose best deployment answers fastest (`cost`, the default, keeps the
cheapest), and say so in the reasons. The policy decides before the call's kind is known, so the
chosen model is compared with its peers in a kind it was measured in (time to first event first); a
peer not measured in it yet (and never failed) takes the call, to be measured.

Bookkeeping over a clock value the caller passes in, like `CooldownTracker`; no I/O: the one wait it
offers (`probe_in_flight`) is a future the caller awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .._decision import Decision
from .._errors import ProviderError
from .._messages import ChatRequest, Message
from .._models import ModelSpec
from ..policies import RouteInput

__all__ = [
    "PROBE_REQUEST",
    "DeploymentHealth",
    "Latency",
    "Prefer",
    "deployment_key",
    "deployments",
    "prefer_latency",
]

Prefer = Literal["cost", "latency"]

PROBE_REQUEST = ChatRequest((Message.user("ping"),), max_tokens=1)
"""What a tripped deployment must answer before real traffic goes to it again."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency EWMAs in ms, by kind (None: not measured in it): `first_token_ms`, to a stream's first
    event; `answer_ms`, an unstreamed call's whole time. Only like is compared with like."""

    first_token_ms: float | None = None
    answer_ms: float | None = None

    def of(self, streamed: bool) -> float | None:
        """The average of that kind of call."""
        return self.first_token_ms if streamed else self.answer_ms


@dataclass(slots=True)
class _Health:
    warm: bool = False  # answered once: its next answers are measured
    latency: Latency = Latency()
    error_rate: float = 0.0
    failures: int = 0  # in a row
    open_until: float | None = None  # tripped until then; past it, a probe decides
    trips: int = 0
    probing: bool = False  # a caller is probing it: the others keep away until the probe answers
    # Callers with nowhere else to go, waiting for its probe to end (`probe_in_flight`).
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """One deployment's health as the router sees it now."""

    key: str
    first_token_ms: float | None
    answer_ms: float | None
    error_rate: float
    state: Literal["closed", "open", "probe"]


class DeploymentHealth:
    """Live health of every deployment, and the order a model's deployments are tried in.

    `alpha` weighs the newest observation in the moving averages. Thread-safe, like the cooldowns:
    one router may serve several event loops through the sync bridge.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        failures: int = 3,
        open_seconds: float = 30.0,
        max_open_seconds: float = 300.0,
    ) -> None:
        self.alpha = alpha
        self.failures = failures
        self.open_seconds = open_seconds
        self.max_open_seconds = max_open_seconds
        self._health: dict[str, _Health] = {}
        self._lock = threading.Lock()

    # -- ordering -------------------------------------------------------------------------------

    def order(
        self, spec: ModelSpec, now: float, *, streamed: bool, probe: bool = True
    ) -> tuple[list[ModelSpec], list[ModelSpec]]:
        """(deployments to try, fastest healthy first; tripped ones whose probe is due, to probe first).

        Healthy deployments are ranked by their latency in the kind of the call (`streamed`), those
        not measured in it first.

        A due deployment is handed to one caller only: it is this caller's to probe, and the caller must
        report the probe (`on_success`, `on_failure`) or give it up (`end_probe`); `probe=False` hands out
        none (due ones count as tripped, left for the next caller to probe).

        A model with one deployment is returned as is, whatever its breaker says (its failures are
        the cooldowns' business; its latency is still measured, for `prefer_latency`). When every
        deployment is tripped and none is due a probe, they are all tried anyway, soonest-due first:
        a call that might succeed beats a certain refusal.
        """
        if not spec.deployments:
            return [spec], []
        ready: list[tuple[float, float, ModelSpec]] = []
        due: list[ModelSpec] = []
        tripped: list[tuple[float, ModelSpec]] = []
        with self._lock:
            for deployment in deployments(spec):
                health = self._health.get(deployment_key(deployment))
                if health is None:
                    ready.append((0.0, 0.0, deployment))
                elif health.open_until is None:
                    latency = health.latency.of(streamed) or 0.0
                    ready.append(
                        (float(health.error_rate > 0.5), latency * (1 + health.error_rate), deployment)
                    )
                elif probe and health.open_until <= now and not health.probing:
                    health.probing = True
                    due.append(deployment)
                else:
                    tripped.append((health.open_until, deployment))
        ready.sort(key=lambda item: item[:2])
        order = [d for _, _, d in ready]
        if not order and not due:
            order = [d for _, d in sorted(tripped, key=lambda item: item[0])]
        return order, due

    def probe_in_flight(self, spec: ModelSpec, now: float) -> asyncio.Future[None] | None:
        """While every deployment of `spec` is tripped, none is due a probe and another caller is
        probing one: a future of the running loop, done when a probe ends (the order may then have
        changed); else None. A caller would otherwise send real calls to the deployments being
        tested, as many as there are callers, where a half-open breaker lets one probe through."""
        if not spec.deployments:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            healths = [self._health.get(deployment_key(d)) for d in deployments(spec)]
            probing: list[_Health] = []
            for health in healths:
                if health is None or health.open_until is None:
                    return None  # closed: calls go there
                if health.probing:
                    probing.append(health)
                elif health.open_until <= now:
                    return None  # due: this caller is to probe it
            if not probing:
                return None
            future: asyncio.Future[None] = loop.create_future()
            for health in probing:
                health.waiters.append((loop, future))
        return future

    def best_latency(self, spec: ModelSpec) -> Latency:
        """The lowest latency EWMAs, each kind apart, among the model's untripped deployments."""
        with self._lock:
            known = [
                h.latency
                for d in deployments(spec)
                if (h := self._health.get(deployment_key(d))) is not None and h.open_until is None
            ]
        return Latency(_least(k.first_token_ms for k in known), _least(k.answer_ms for k in known))

    def has_failed(self, spec: ModelSpec) -> bool:
        """Whether any deployment of the model has failed a call (its error rate never returns to 0)."""
        with self._lock:
            return any(
                (h := self._health.get(deployment_key(d))) is not None and h.error_rate > 0
                for d in deployments(spec)
            )

    def state(self, spec: ModelSpec, now: float) -> list[DeploymentState]:
        """Every deployment of `spec` with its averages and breaker state."""
        out = []
        with self._lock:
            for deployment in deployments(spec):
                key = deployment_key(deployment)
                health = self._health.get(key, _Health())
                breaker: Literal["closed", "open", "probe"] = "closed"
                if health.open_until is not None:
                    breaker = "open" if health.open_until > now else "probe"
                latency = health.latency
                out.append(
                    DeploymentState(
                        key, latency.first_token_ms, latency.answer_ms, health.error_rate, breaker
                    )
                )
        return out

    # -- observations ---------------------------------------------------------------------------

    def on_success(
        self, spec: ModelSpec, *, first_token_ms: float | None = None, answer_ms: float | None = None
    ) -> None:
        """A call answered: a stream after `first_token_ms`, an unstreamed call in `answer_ms` (a
        probe: neither). Close its breaker, update the averages (from the deployment's second answer
        on: the first one warmed it up)."""
        with self._lock:
            health = self._health.setdefault(deployment_key(spec), _Health())
            if not health.warm:
                health.warm = True
            else:
                latency = health.latency
                health.latency = Latency(
                    self._averaged(latency.first_token_ms, first_token_ms),
                    self._averaged(latency.answer_ms, answer_ms),
                )
            health.error_rate *= 1 - self.alpha
            health.failures = 0
            health.open_until = None
            health.trips = 0
            _end_probe(health)

    def _averaged(self, average: float | None, sample: float | None) -> float | None:
        if sample is None or average is None:
            return average if sample is None else sample
        return self.alpha * sample + (1 - self.alpha) * average

    def end_probe(self, spec: ModelSpec) -> None:
        """The caller `order` handed a due probe to is done with it (answered, failed or given up):
        if it did not report, the deployment is due again, for the next caller to probe."""
        with self._lock:
            health = self._health.get(deployment_key(spec))
            if health is not None:
                _end_probe(health)

    def on_failure(self, spec: ModelSpec, error: ProviderError, now: float, *, probe: bool = False) -> bool:
        """A call (or a `probe`) failed; returns whether the deployment is now tripped.

        A call's `bad_request` is the caller's fault and says nothing about the deployment; a probe's
        is a failed probe like any (the probe is gearshift's own request: refused, it would stay due,
        and every call would pay another one before its answer). A failure with a `retry_after` trips
        it for that long (capped at `max_open_seconds`): the provider said when to come back. A
        failure of a deployment already open is a call that set out before it tripped: it only
        lengthens the open period to its `retry_after`.
        """
        if not error.allows_fallback and not probe:
            return False
        with self._lock:
            health = self._health.setdefault(deployment_key(spec), _Health())
            health.error_rate = self.alpha + (1 - self.alpha) * health.error_rate
            health.failures += 1
            told = (
                None if error.retry_after is None else min(max(error.retry_after, 0.0), self.max_open_seconds)
            )
            if health.open_until is not None and health.open_until > now:
                if told is not None:
                    health.open_until = max(health.open_until, now + told)
                return True
            probed = health.open_until is not None  # due: this was its probe (or a call tried anyway)
            if probed or health.failures >= self.failures or told is not None:
                seconds = min(self.open_seconds * 2**health.trips, self.max_open_seconds)
                health.open_until = now + (seconds if told is None else told)
                health.trips += 1
                _end_probe(health)
                return True
            return False

    def all_tripped(self, spec: ModelSpec, now: float) -> bool:
        """Whether every deployment of the model is tripped (then the model itself cools down)."""
        with self._lock:
            return all(
                (h := self._health.get(deployment_key(d))) is not None and h.open_until is not None
                for d in deployments(spec)
            )


def _end_probe(health: _Health) -> None:
    """The deployment's probe is over (under the lock): wake the callers waiting for it."""
    health.probing = False
    waiters, health.waiters = health.waiters, []
    for loop, future in waiters:
        with contextlib.suppress(RuntimeError):  # that caller's loop is closed: no one waits there now
            loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # woken by another probe's end, or the caller was cancelled
        future.set_result(None)


def _least(figures: Iterable[float | None]) -> float | None:
    known = [figure for figure in figures if figure is not None]
    return min(known) if known else None


def deployments(spec: ModelSpec) -> list[ModelSpec]:
    """The model's deployments as specs: itself, then one per `ModelSpec.deployments` entry (same id,
    prices and tier; that deployment's provider and model name)."""
    if not spec.deployments:
        return [spec]
    return [
        spec.model_copy(update={"deployments": ()}),
        *(
            spec.model_copy(
                update={"provider": d.provider, "model": d.model or spec.model, "deployments": ()}
            )
            for d in spec.deployments
        ),
    ]


def deployment_key(spec: ModelSpec) -> str:
    """`<model id>@<provider>`: one deployment, as health records and attempts name it."""
    return f"{spec.id}@{spec.provider}"


def prefer_latency(route: RouteInput, decision: Decision, health: DeploymentHealth) -> Decision:
    """The decision moved to the fastest model of its tier, when one is measurably faster.

    Only models of the chosen tier compete, so quality is unchanged; they are compared in one kind of
    latency (`Latency`), one the chosen model was measured in (until it is, it keeps its place). A
    model of the tier not measured in it yet takes the call, to be measured: the chosen one takes
    every call, so no other would ever be, and the cheapest would stay for good. One that has failed
    is left out of that (it would fail calls to be measured): it is measured when it serves as a
    fallback. A policy that named a model other than the cheapest of its tier (a rule's
    `model = ...`) meant that model: it is kept.
    """
    peers: Sequence[ModelSpec] = [m for m in route.candidates if m.tier == decision.tier]
    if len(peers) < 2 or peers[0].id != decision.model:
        return decision
    chosen = health.best_latency(peers[0])
    streamed = chosen.first_token_ms is not None
    mine = chosen.of(streamed)
    if mine is None:
        return decision
    timed: list[tuple[float, ModelSpec]] = []
    for peer in peers[1:]:
        latency = health.best_latency(peer).of(streamed)
        if latency is not None:
            timed.append((latency, peer))
        elif not health.has_failed(peer):
            reason = (
                f"prefer = latency: {peer.id} is not measured yet in tier {decision.tier} "
                f"({mine:.0f} ms for {decision.model}): it takes this call, to be measured"
            )
            return _moved(route, decision, peer, reason)
    if not timed:
        return decision
    latency, fastest = min(timed, key=lambda item: item[0])
    if mine <= latency:
        return decision
    reason = (
        f"prefer = latency: {fastest.id} answers fastest in tier {decision.tier} "
        f"({latency:.0f} ms against {mine:.0f} ms for {decision.model})"
    )
    return _moved(route, decision, fastest, reason)


def _moved(route: RouteInput, decision: Decision, fastest: ModelSpec, reason: str) -> Decision:
    """`decision` moved to `fastest`, with the model it chose first among its fallbacks."""
    fallbacks = (decision.model, *(m for m in decision.fallbacks if m != fastest.id))
    return replace(
        decision,
        model=fastest.id,
        fallbacks=fallbacks,
        reasons=(*decision.reasons, reason),
        estimated_cost_usd=route.estimated_cost(fastest),
    )
