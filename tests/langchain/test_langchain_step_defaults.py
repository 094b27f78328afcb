"""A chat model keeps what its settings give every step's context, and builds it again when one changes.

The step defaults (agent, budget keys, expected steps, step type, forced model, tier bounds, cost cap)
are built once and reused while the settings stay as they were: a step after a setting was assigned,
or on a copy with other settings, must read the context a new model with those settings reads, down to
the type of each value (Python finds 1 == 1.0 == True; the context's repr and the decision's reasons
do not), and settings a new model would refuse are refused on every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from gearshift import InvalidRequestError, ModelPrices, ModelRegistry, ModelSpec, Router, StepType
from gearshift.datasets import OutcomeTable
from gearshift.learning import DefaultPolicy
from gearshift.providers import ReplayProvider
from gearshift_langchain import RoutedChatModel

_HISTORY: list[BaseMessage] = [
    SystemMessage("You are a coding agent."),
    HumanMessage("The nightly build fails; fix it."),
    AIMessage("", tool_calls=[{"name": "read", "args": {"path": "a.py"}, "id": "c1"}]),
    ToolMessage("Error: no such file", tool_call_id="c1", name="read", status="error"),
]
_TOOLS = [{"type": "function", "function": {"name": "read", "description": "Reads a file."}}]

# Each edit, with the settings a new model is built with to compare (those before it, and its own).
_EDITS: tuple[tuple[str, Any], ...] = (
    ("agent_id", "coder"),
    ("agent_id", "reviewer"),
    ("budget_keys", ("team:search",)),
    ("budget_keys", ("team:search", "customer:42")),
    ("expected_steps", 8),
    ("step_type", StepType.PLAN),
    ("step_type", "reflect"),
    ("model", "mini"),
    ("model", None),
    ("min_tier", 1),
    ("max_tier", 2),
    ("max_tier", 2.0),
    ("max_cost_usd", 1),
    ("max_cost_usd", 1.0),
    ("max_cost_usd", True),
    ("max_cost_usd", 0.5),
    ("expected_steps", None),
)


def _router() -> Router:
    def spec(model_id: str, tier: int, price_in: float, price_out: float) -> ModelSpec:
        prices = ModelPrices(input=price_in, output=price_out)
        return ModelSpec(id=model_id, provider="replay", model=model_id, tier=tier, prices=prices)

    registry = ModelRegistry([spec("mini", 0, 0.15, 0.6), spec("mid", 1, 2.5, 10), spec("large", 2, 15, 75)])
    return Router(registry, policy=DefaultPolicy(), providers=[ReplayProvider(OutcomeTable([]))])


def _step(model: RoutedChatModel) -> Any:
    return model._step(_HISTORY, None, {"thread_id": "t-1", "langgraph_node": "model"}, {"tools": _TOOLS})


def test_a_step_after_a_setting_changed_reads_what_a_new_model_with_that_setting_reads() -> None:
    router = _router()
    model = RoutedChatModel(router=router, self_escalation=False)
    settings: dict[str, Any] = {}
    _step(model)  # the defaults of the first settings are kept
    for name, value in _EDITS:
        setattr(model, name, value)
        settings[name] = value
        step = _step(model)
        new = RoutedChatModel(router=router, self_escalation=False)
        for key, given in settings.items():
            setattr(new, key, given)  # as assigned, not validated: the same values of the same types
        expected = _step(new)
        assert repr(step.context) == repr(expected.context), name
        assert step.request == expected.request
        assert router.decide(step.request, step.context) == router.decide(expected.request, expected.context)
        assert repr(_step(model).context) == repr(step.context)  # and kept for the next step


def test_a_copy_with_other_settings_does_not_read_the_originals() -> None:
    router = _router()
    model = RoutedChatModel(router=router, agent_id="coder", max_tier=2)
    first = _step(model).context
    copies: list[Callable[[], RoutedChatModel]] = [
        lambda: model.model_copy(update={"agent_id": "reviewer"}),
        lambda: model.model_copy(update={"max_tier": 1}),
        lambda: model.model_copy(update={"budget_keys": ("team:a",)}),
    ]
    for make in copies:
        copy = make()
        expected = RoutedChatModel(
            router=router,
            agent_id=copy.agent_id,
            max_tier=copy.max_tier,
            budget_keys=copy.budget_keys,
        )
        assert repr(_step(copy).context) == repr(_step(expected).context)
        assert _step(copy).context != first
    assert repr(_step(model).context) == repr(first)


def test_bounds_a_new_model_refuses_are_refused_on_every_step() -> None:
    model = RoutedChatModel(router=_router(), min_tier=0, max_tier=2)
    _step(model)
    model.min_tier = 2
    model.max_tier = 1
    for _ in range(2):
        with pytest.raises(InvalidRequestError, match="min_tier 2 is above max_tier 1"):
            _step(model)
    model.max_tier = 2
    assert _step(model).context.hints.min_tier == 2
