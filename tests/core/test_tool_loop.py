"""Switching models mid tool-loop: tool-call ids and results every provider accepts, and stickiness."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gearshift import (
    CallerHints,
    ChatRequest,
    ImagePart,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    StepContext,
    TextPart,
    ToolCall,
    keep_tool_loop_model,
    pair_tool_results,
)
from gearshift._tool_pairing import portable_id
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

PORTABLE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# Two models share tier 2 (both served as the local server's `large`); the scorer prefers the cheaper
# one there, so keeping the other shows as a forced model.
REGISTRY = ModelRegistry(
    ModelSpec(
        id=name, provider="openai", model=served, tier=tier, prices=ModelPrices(input=price, output=price)
    )
    for name, served, tier, price in (
        ("small", "small", 1, 0.1),
        ("large", "large", 2, 2.0),
        ("large-b", "large", 2, 1.0),
    )
)


@pytest.fixture
def router(openai_provider: OpenAIProvider) -> Iterator[Router]:
    router = Router(REGISTRY, policy=SignalScorer(), providers=[openai_provider])
    yield router
    router.close()


def _reading_results() -> ChatRequest:
    return ChatRequest(
        messages=(
            Message.user("what is the weather"),
            Message.assistant(tool_calls=[ToolCall("call_1", "weather", '{"city": "Oslo"}')]),
            Message.tool("call_1", "sunny", name="weather"),
        )
    )


# -- tool-call ids and pairing -------------------------------------------------------------------------


def test_calls_and_results_without_ids_are_paired_in_order() -> None:
    paired = pair_tool_results(
        [
            Message.user("q"),
            Message.assistant(tool_calls=[ToolCall("", "a"), ToolCall("", "b")]),
            Message.tool("", "ra"),
            Message.tool("", "rb"),
        ]
    )
    ids = [c.id for c in paired[1].tool_calls]
    assert all(PORTABLE.match(i) for i in ids) and len(set(ids)) == 2
    assert [(m.tool_call_id, m.text, m.name) for m in paired[2:]] == [
        (ids[0], "ra", "a"),
        (ids[1], "rb", "b"),
    ]


def test_a_history_that_already_holds_is_kept_as_it_is() -> None:
    history = [
        Message.user("q"),
        Message.assistant(tool_calls=[ToolCall("call_a", "a"), ToolCall("call_b", "b")]),
        Message.tool("call_a", "ra", name="a"),
        Message.tool("call_b", "rb", name="b"),
        Message.assistant("done"),
    ]
    paired = pair_tool_results(history)
    assert all(p is m for p, m in zip(paired, history, strict=True))
    # A result without its tool's name is not left as it is: it gets the call's name.
    unnamed = pair_tool_results([*history[:3], Message.tool("call_b", "rb")])
    assert unnamed[3].name == "b" and unnamed[3].tool_call_id == "call_b"


def test_portable_id_is_stable_and_valid() -> None:
    assert portable_id("toolu_01A09q90qw90lq917835lq9") == "toolu_01A09q90qw90lq917835lq9"
    long = "x" * 64
    assert portable_id(long) == portable_id(long) != long
    assert PORTABLE.match(portable_id(long))


# -- stickiness ----------------------------------------------------------------------------------------


async def test_a_tool_loop_stays_on_the_model_that_made_the_calls(
    router: Router,
) -> None:
    request = _reading_results()
    assert router.decide(request).model == "small"  # free routing would drop the loop to tier 1
    lifted = keep_tool_loop_model(router, request, StepContext(), "large")
    assert lifted.hints.min_tier == 2
    assert lifted.hints.force_model == "large"  # the policy's pick at tier 2 is large-b
    answer = await router.acomplete(request, context=lifted)
    assert answer.model_id == "large"


def test_the_prior_model_is_kept_only_when_it_is_the_policys_pick_at_its_tier(
    router: Router,
) -> None:
    lifted = keep_tool_loop_model(router, _reading_results(), StepContext(), "large-b")
    assert (lifted.hints.min_tier, lifted.hints.force_model) == (2, None)
    assert router.decide(_reading_results(), lifted).model == "large-b"


@pytest.mark.parametrize(
    ("hints", "prior"),
    [
        (CallerHints(), None),  # no prior model: nothing to keep
        (CallerHints(), "retired"),  # a model the registry no longer has
        (CallerHints(max_tier=1), "large"),  # the caller's cap wins
        (CallerHints(force_model="small"), "large"),  # so does a forced model
    ],
)
def test_stickiness_gives_way(router: Router, hints: CallerHints, prior: str | None) -> None:
    context = StepContext(hints=hints)
    assert keep_tool_loop_model(router, _reading_results(), context, prior) is context


def test_a_prior_model_that_cannot_serve_the_step_leaves_it_to_route_freely(
    router: Router,
) -> None:
    context = StepContext(hints=CallerHints(max_cost_usd=0.0))  # nothing at tier 2 fits a zero cap
    assert keep_tool_loop_model(router, _reading_results(), context, "large") is context


async def test_a_history_moves_between_openai_and_claude_as_each_api_takes_it(
    openai_provider: OpenAIProvider,
    anthropic_provider: AnthropicProvider,
    openai_server: LocalOpenAIServer,
    anthropic_server: LocalAnthropicServer,
) -> None:
    # Each local server refuses what its real API refuses (gearshift.testing's rules); a step on
    # Claude, then on OpenAI, carries the turns each model wrote: Claude's "\n\n" before a tool call
    # and its toolu_ ids, an empty OpenAI answer, an agent's name with a space, a JPEG declared PNG.
    prices = ModelPrices(input=1, output=1)
    registry = ModelRegistry(
        ModelSpec(id=name, provider=provider, model=served, tier=1, prices=prices, supports_vision=True)
        for name, provider, served in (("gpt", "openai", "small"), ("claude", "anthropic", "claude-small"))
    )
    jpeg = "/9j/4AAQSkZJRgABAQ"
    history = (
        Message.system("Be brief."),
        Message("user", (TextPart("What is in this picture?"), ImagePart(data=jpeg)), name="Field Agent"),
        Message.assistant("\n\n", [ToolCall("toolu_01Abc", "weather", '{"city": "Oslo"}')]),
        Message.tool("toolu_01Abc", "sunny"),
        Message.assistant(""),
        Message.user("And now?"),
    )
    router = Router(registry, policy=SignalScorer(), providers=[openai_provider, anthropic_provider])
    try:
        for model in ("claude", "gpt"):
            step = StepContext(hints=CallerHints(force_model=model))
            routed = await router.acomplete(ChatRequest(messages=history), step)
            assert routed.model_id == model
    finally:
        router.close()
    assert len(anthropic_server.requests) == len(openai_server.requests) == 1
