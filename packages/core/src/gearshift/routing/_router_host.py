"""What the pieces of a routed call use of the router that runs them (`Router` is a `RouterHost`).

The review loop, the tracing of a call, shadow evaluation, speculative classification and batches
each work for one router: they plan further steps through it, call it again, and read its registry,
policy, cascade and decision log. They are given the router as a `RouterHost`, this narrow view of
it, so they never import the router module: the router imports them, not the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._chain_host import ChainHost

if TYPE_CHECKING:
    from .._context import StepContext
    from .._messages import ChatRequest, RequestLike
    from ..cascades._gate import QualityGate
    from ..policies import Policy
    from ._chain import ChainRun
    from ._records import Escalation
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
    """The router as the pieces of a call see it: a chain run's host, plus planning and calling."""

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

    async def acomplete(
        self, request: RequestLike, context: StepContext | None = None, *, self_escalation: bool | None = None
    ) -> RoutedResponse:
        """Route the request and return the first answer that succeeds along the chain."""
        ...

    async def _aplan(
        self,
        request: ChatRequest,
        context: StepContext,
        *,
        escalate: bool,
        log: bool = True,
        request_id: str | None = None,
        remember: bool | None = None,
        prepare: bool = True,
    ) -> ChainRun: ...

    def _log_escalation(self, run: ChainRun, escalation: Escalation) -> None: ...

    def _escalates(self, override: bool | None) -> bool: ...
