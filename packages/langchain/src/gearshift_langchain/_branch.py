"""`routed_branch`: a `RunnableBranch` whose conditions are gearshift routing decisions.

For applications that route between whole chains (a cheap retrieval chain, a strong reasoning chain)
rather than between models: the router decides on the input as it would for a model call, and the
branch runs the chain registered for the decided model or tier. The decision is pure (no model is
called to make it) and is taken once per input: the branch's conditions share it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
    StepContext,
    pair_tool_results,
)

from ._context import StepDefaults, step_context
from ._convert import convert_messages

__all__ = ["routed_branch"]

RequestMaker = Callable[[Any], "ChatRequest | str | Sequence[BaseMessage]"]
_TEXT_KEYS = ("input", "question", "query", "prompt", "text")
_REMEMBERED = 16  # decisions kept for the branch's conditions; a few concurrent inputs at most


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

    def picks_model(model_id: str) -> Callable[[Any, RunnableConfig], bool]:
        return lambda value, config: decisions.get(value, config).model == model_id

    def fits_tier(tier: int) -> Callable[[Any, RunnableConfig], bool]:
        return lambda value, config: decisions.get(value, config).tier <= tier

    conditions: list[tuple[Runnable[Any, bool], Any]] = [
        (RunnableLambda(picks_model(key), name=f"gearshift picks {key}"), branches[key]) for key in model_keys
    ]
    conditions.extend(
        (RunnableLambda(fits_tier(tier), name=f"gearshift tier <= {tier}"), branches[tier])
        for tier in tier_keys
    )
    if default is None:
        default = branches[tier_keys[-1]] if tier_keys else branches[model_keys[-1]]
    return RunnableBranch(*conditions, default)


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
    """The router's decision per input, taken once and shared by the branch's conditions.

    Decisions are pure functions of the request and its context, so a remembered one is reused only
    for an equal request in an equal context.
    """

    def __init__(self, router: Router, to_request: RequestMaker, defaults: StepDefaults) -> None:
        self._router = router
        self._to_request = to_request
        self._defaults = defaults
        self._lock = threading.Lock()
        self._recent: deque[tuple[ChatRequest, StepContext, Decision]] = deque(maxlen=_REMEMBERED)

    def get(self, value: Any, config: RunnableConfig) -> Decision:
        request, history, converted = _as_request(self._to_request(value))
        context = step_context(
            config.get("metadata") or {}, history, converted, self._defaults, has_tools=False
        )
        with self._lock:
            for seen_request, seen_context, decision in self._recent:
                if seen_request == request and seen_context == context:
                    return decision
        decision = self._router.decide(request, context)
        with self._lock:
            self._recent.append((request, context, decision))
        return decision


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
