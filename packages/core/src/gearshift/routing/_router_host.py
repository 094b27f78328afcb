"""What the pieces of a routed call use of the router that runs them (`Router` is a `RouterHost`).

The review loop, the tracing of a call, shadow evaluation, speculative classification and batches
each work for one router: they plan further steps for it (`_planning.aplan_call`), call it again, and
read its registry, policy, cascade and decision log. They are given the router as a `RouterHost`, this
narrow view of its public attributes, so they never import the router module: the router imports them,
not the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._chain_host import ChainHost

if TYPE_CHECKING:
    from .._context import StepContext
    from .._messages import ChatRequest, RequestLike
    from ..cascades._gate import QualityGate
    from ..escalation import LiveEscalation
    from ..policies import Policy
    from ._deployments import Prefer
    from ._routed import RoutedResponse

__all__ = ["RouterHost", "ShadowSink"]


class ShadowSink(Protocol):
    """Where a routed call's answer goes to be shadowed (`ShadowEvaluator` is one)."""

    def consider(
        self, router: RouterHost, request: ChatRequest, context: StepContext, result: RoutedResponse
    ) -> None:
        """Maybe start a shadow of a call that was just answered (never blocks, never raises)."""
        ...


class RouterHost(ChainHost, Protocol):
    """The router as the pieces of a call see it: a chain run's host, plus what planning a step
    reads (`_planning`) and calling."""

    @property
    def policy(self) -> Policy:
        """The routing policy."""
        ...

    @property
    def cascade(self) -> QualityGate | None:
        """The quality gate cheaper answers must pass, if any."""
        ...

    @property
    def max_escalations(self) -> int:
        """How many times one call may be handed to a stronger model."""
        ...

    @property
    def shadow(self) -> ShadowSink | None:
        """Shadow evaluation of answered calls, if on."""
        ...

    @property
    def self_escalation(self) -> bool:
        """Whether models below the top tier are offered the `escalate` tool by default."""
        ...

    @property
    def escalation(self) -> LiveEscalation | None:
        """The learned escalation, if any: it may hand a run's steps to a stronger tier."""
        ...

    @property
    def prefer(self) -> Prefer:
        """`"cost"`, or `"latency"`: a decision moves to the fastest model of its tier."""
        ...

    @property
    def fallback_to_lower_tiers(self) -> bool:
        """Whether a decision's chain ends with the cheaper tiers' models."""
        ...

    async def acomplete(
        self, request: RequestLike, context: StepContext | None = None, *, self_escalation: bool | None = None
    ) -> RoutedResponse:
        """Route the request and return the first answer that succeeds along the chain."""
        ...
