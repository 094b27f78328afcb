"""`routed_branch`: a `RunnableBranch` whose conditions are gearshift routing decisions.

For applications that route between whole chains (a cheap retrieval chain, a strong reasoning chain)
rather than between models: the router decides on the input as it would for a model call, and the
branch runs the chain registered for the decided model or tier. No model is called to make the
decision, and it is taken once per run of the branch: the run's conditions share it, and the same input
run again is decided again (a policy holding a share counts every run, a model in cooldown is left).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBranch, RunnableConfig, RunnableLambda

from gearshift import (
    ChatRequest,
    ConfigError,
    Decision,
    InvalidRequestError,
    Message,
    Router,
    pair_tool_results,
)

from ._context import StepDefaults, step_context
from ._convert import convert_messages

__all__ = ["routed_branch"]

RequestMaker = Callable[[Any], "ChatRequest | str | Sequence[BaseMessage]"]
_TEXT_KEYS = ("input", "question", "query", "prompt", "text")
# Runs whose decision is kept for their later conditions: far more than run at once (a run's entry goes
# when the condition that holds, or the last one, has read it; or when this many newer runs came in).
_REMEMBERED = 1024


def routed_branch(
    branches: Mapping[str | int, Runnable[Any, Any] | Callable[[Any], Any]],
    *,
    router: Router | None = None,
    config: str | Path | None = None,
    default: Runnable[Any, Any] | Callable[[Any], Any] | None = None,
    to_request: RequestMaker | None = None,
    agent_id: str | None = None,
) -> RunnableBranch[Any, Any]:
    """A `RunnableBranch` that runs the chain gearshift's decision on the input points to.

    `branches` maps registry model ids or tiers to runnables. For each input the router decides as
    for a model call; the branch keyed by the decided model runs if there is one, else the branch of
    the lowest tier at or above the decided tier, else `default` (which defaults to the branch of the
    highest tier, or the last branch when every key is a model id).

    The input becomes a request through `to_request` when given; otherwise a string, a list of
    messages (message objects, `(role, text)` pairs or `{"role", "content"}` dicts, as the chat model
    takes), a prompt value, a `ChatRequest`, or a dict with such `messages` or one of
    `input`/`question`/`query`/`prompt`/`text` is understood. The run config's metadata steers the
    decision as for `RoutedChatModel` (`agent_id`, `step_type`, `min_tier`, ...).
    """
    if router is not None and config is not None:
        raise InvalidRequestError("routed_branch takes a router or a config path, not both")
    if not branches:
        raise InvalidRequestError("routed_branch needs at least one branch")
    router = router if router is not None else Router.from_config(config)
    model_keys, tier_keys = _check_keys(router, branches)
    decisions = _Decisions(router, to_request or _request, StepDefaults(agent_id=agent_id))

    keyed: list[tuple[Callable[[Decision], bool], str, Any]] = [
        (_picks_model(key), f"gearshift picks {key}", branches[key]) for key in model_keys
    ]
    keyed += [(_fits_tier(tier), f"gearshift tier <= {tier}", branches[tier]) for tier in tier_keys]
    conditions = [
        (_condition(decisions, holds, name, last=index == len(keyed) - 1), branch)
        for index, (holds, name, branch) in enumerate(keyed)
    ]
    if default is None:
        default = branches[tier_keys[-1]] if tier_keys else branches[model_keys[-1]]
    return RunnableBranch(*conditions, default)


def _picks_model(model_id: str) -> Callable[[Decision], bool]:
    return lambda decision: decision.model == model_id


def _fits_tier(tier: int) -> Callable[[Decision], bool]:
    return lambda decision: decision.tier <= tier


def _condition(
    decisions: _Decisions, holds: Callable[[Decision], bool], name: str, *, last: bool
) -> Runnable[Any, bool]:
    """A condition of the branch: whether the decision of the branch's run `holds`."""

    def check(value: Any, config: RunnableConfig, run_manager: CallbackManagerForChainRun) -> bool:
        run = run_manager.parent_run_id  # the branch's run is the parent of its conditions' runs
        held = holds(decisions.get(value, config, run))
        if held or last:  # no later condition of this run reads its decision
            decisions.forget(run)
        return held

    # RunnableLambda passes `run_manager` to a function that takes it; its type hints omit that form.
    return RunnableLambda(check, name=name)  # type: ignore[arg-type]


def _check_keys(router: Router, branches: Mapping[str | int, Any]) -> tuple[list[str], list[int]]:
    model_keys: list[str] = []
    tier_keys: list[int] = []
    for key in branches:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise InvalidRequestError(f"routed_branch keys are model ids or tiers, got {key!r}")
        if isinstance(key, str):
            router.registry[key]  # raises UnknownModelError naming the known ids
            model_keys.append(key)
        elif key not in router.registry.tiers:
            raise ConfigError(
                f"routed_branch has a branch for tier {key}, but the registry's tiers are "
                f"{', '.join(map(str, router.registry.tiers))}"
            )
        else:
            tier_keys.append(key)
    return model_keys, sorted(tier_keys)


class _Decisions:
    """The router's decision per run of the branch, taken by its first condition and shared by the others.

    Not per input: a decision depends on the router's state as well (a recalibrated threshold, a model
    in cooldown), and a policy holding a share must count every run it routes.
    """

    def __init__(self, router: Router, to_request: RequestMaker, defaults: StepDefaults) -> None:
        self._router = router
        self._to_request = to_request
        self._defaults = defaults
        self._lock = threading.Lock()
        self._runs: OrderedDict[UUID | None, Decision] = OrderedDict()

    def get(self, value: Any, config: RunnableConfig, run: UUID | None) -> Decision:
        """The decision of the branch's run `run` on its input `value`, taken by its first condition."""
        with self._lock:
            decision = self._runs.get(run)
        if decision is not None:
            return decision
        request, history, converted = _as_request(self._to_request(value))
        context = step_context(
            config.get("metadata") or {}, history, converted, self._defaults, has_tools=False
        )
        decision = self._router.decide(request, context)
        if run is not None:
            with self._lock:
                self._runs[run] = decision
                while len(self._runs) > _REMEMBERED:
                    self._runs.popitem(last=False)
        return decision

    def forget(self, run: UUID | None) -> None:
        """Drop the decision of a run whose conditions are done."""
        with self._lock:
            self._runs.pop(run, None)


def _request(value: Any) -> ChatRequest | str | Sequence[BaseMessage]:
    """The default reading of a branch's input as a request."""
    if isinstance(value, (ChatRequest, str)):
        return value
    if isinstance(value, PromptValue):
        return value.to_messages()
    messages = _messages(value)
    if messages is not None:
        return messages
    if isinstance(value, Mapping):
        messages = _messages(value.get("messages"))
        if messages:
            return messages
        for key in _TEXT_KEYS:
            if isinstance(value.get(key), str):
                return str(value[key])
    raise InvalidRequestError(
        f"routed_branch cannot read a {type(value).__name__} as a request; pass to_request=... that "
        "turns the input into a prompt string, a list of messages or a ChatRequest"
    )


def _messages(value: Any) -> list[BaseMessage] | None:
    """`value` as LangChain messages, read as `RoutedChatModel` reads its input (messages, `(role,
    text)` pairs, `{"role", "content"}` dicts), or None when it is no list of them."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        return None
    try:
        return convert_to_messages(value)
    except (ValueError, TypeError, KeyError, NotImplementedError):
        return None


def _as_request(
    made: ChatRequest | str | Sequence[BaseMessage],
) -> tuple[ChatRequest, Sequence[BaseMessage], Sequence[Message]]:
    """The request, and the LangChain history with its conversion (one message each) when it came as one."""
    if isinstance(made, ChatRequest):
        return made, (), ()
    if isinstance(made, str):
        return ChatRequest(messages=(Message.user(made),)), (), ()
    converted = convert_messages(made)
    return ChatRequest(messages=pair_tool_results(converted)), made, converted
