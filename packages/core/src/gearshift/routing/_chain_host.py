"""What a chain run uses of the router that planned it: a narrow view, so the run never imports the router.

`Router` is a `ChainHost`; `RouterHost` (`_router_host`) widens it for the pieces that also plan and call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._context import StepContext
    from .._models import ModelRegistry
    from ..budgets import BudgetLedger
    from ..providers import Provider
    from ._cooldown import CooldownTracker
    from ._decision_log import DecisionLog
    from ._deployments import DeploymentHealth
    from ._warm_cache import WarmCaches

__all__ = ["ChainHost"]


class ChainHost(Protocol):
    """What a chain run uses of the router that planned it (`Router` is one): the models and their
    providers, the health it keeps of them, the budget ledger, the decision log and its clock."""

    @property
    def registry(self) -> ModelRegistry:
        """The models routed over."""
        ...

    @property
    def providers(self) -> dict[str, Provider]:
        """The providers by name."""
        ...

    @property
    def cooldowns(self) -> CooldownTracker:
        """Which models are cooling down after failures."""
        ...

    @property
    def deployments(self) -> DeploymentHealth:
        """The health and latency of each model's deployments."""
        ...

    @property
    def budgets(self) -> BudgetLedger | None:
        """The budget ledger, if any."""
        ...

    @property
    def decision_log(self) -> DecisionLog | None:
        """Where decisions and attempts are recorded, if anywhere."""
        ...

    @property
    def warm_caches(self) -> WarmCaches:
        """The models whose prompt caches are warm, per run."""
        ...

    @property
    def default_output_tokens(self) -> int:
        """Output tokens assumed for a call that sets no cap."""
        ...

    def clock(self) -> float:
        """The monotonic clock (seconds) of cooldowns, deployment health and warm caches."""
        ...

    def spend_keys(self, context: StepContext) -> tuple[str, ...]:
        """The ledger keys a call with `context` is charged to."""
        ...
