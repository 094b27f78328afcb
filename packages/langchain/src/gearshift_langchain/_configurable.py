"""LangChain's configurable fields on a routed chat model: the configured model keeps its router.

`model.configurable_fields(max_tokens=ConfigurableField(id="cap"))` makes LangChain build the model
anew, on every call configured with `cap`, from its settings (`type(model)(**settings)`). The router of
a `RoutedChatModel` is no setting (it is a live object: SDK clients, a budget ledger), so the model
built so had a router of its own: one from its config file, made again on every call and never
closed, or, for a model given a `Router`, one from no config at all (the built-in model ladder).
`RouterKeepingFields` hands the model's router to the constructor while LangChain builds the copy.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.configurable import RunnableConfigurableFields

if TYPE_CHECKING:
    from gearshift import Router

__all__ = ["RouterKeepingFields", "router_being_kept"]

_KEPT: ContextVar[Router | None] = ContextVar("gearshift_langchain_kept_router", default=None)


def router_being_kept() -> Router | None:
    """The router of the model LangChain is building a configured copy of, if it is doing so now."""
    return _KEPT.get()


class RouterKeepingFields(RunnableConfigurableFields):  # type: ignore[type-arg]  # subscripted, an abstract model
    """`RunnableConfigurableFields` whose configured copies of a routed chat model share its router."""

    def _prepare(self, config: RunnableConfig | None = None) -> tuple[Runnable[Any, Any], RunnableConfig]:
        token = _KEPT.set(getattr(self.default, "router", None))
        try:
            return super()._prepare(config)
        finally:
            _KEPT.reset(token)
