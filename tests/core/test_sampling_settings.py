"""A request's sampling settings (top_p, seed, penalties, top_k) through `Router` and the real SDKs to
the local servers: each reaches the wire of the APIs that take it; a model whose API does not take
one is sent the request without it, and the decision's reasons say so; out-of-range values are
refused by name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gearshift import (
    CallerHints,
    ChatRequest,
    InvalidRequestError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    StepContext,
    StreamDone,
)
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.providers._openai import OpenAIProvider
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

OPENAI_KEY, ANTHROPIC_KEY = "sk-local-sampling", "sk-ant-local-sampling"
ALL = {"top_p": 0.4, "seed": 7, "frequency_penalty": 0.5, "presence_penalty": -1.5, "top_k": 20}


@pytest.fixture
def openai_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small",), api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[LocalAnthropicServer]:
    with LocalAnthropicServer(models=("claude-large",), api_key=ANTHROPIC_KEY) as server:
        yield server


@pytest.fixture
async def router(
    openai_server: LocalOpenAIServer, anthropic_server: LocalAnthropicServer
) -> AsyncIterator[Router]:
    registry = ModelRegistry(
        [
            ModelSpec(
                id="small",
                provider="openai",
                model="small",
                tier=1,
                prices=ModelPrices(input=1.0, output=4.0),
            ),
            ModelSpec(
                id="claude",
                provider="anthropic",
                model="claude-large",
                tier=2,
                prices=ModelPrices(input=3.0, output=15.0),
            ),
        ]
    )
    providers = [
        OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url, timeout=5.0),
        AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0),
    ]
    async with Router(registry, policy=SignalScorer(), providers=providers) as routed:
        yield routed


def _on(model: str) -> StepContext:
    return StepContext(hints=CallerHints(force_model=model))


def _ask(**settings: Any) -> ChatRequest:
    return ChatRequest((Message.user("Tell me about gear ratios."),), **settings)


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_gets_top_p_seed_and_penalties_and_is_not_sent_top_k(
    router: Router, openai_server: LocalOpenAIServer, stream: bool
) -> None:
    if stream:
        routed = router.astream(_ask(**ALL), _on("small"))
        assert isinstance([e async for e in routed][-1], StreamDone)
        decision = routed.decision
    else:
        decision = (await router.acomplete(_ask(**ALL), _on("small"))).decision
    body = openai_server.requests[-1].body
    assert {k: body.get(k) for k in ALL} == {**ALL, "top_k": None}
    assert decision is not None
    assert decision.reasons[-1] == "top_k not sent: the API of small (provider openai) does not take it"


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_gets_temperature_and_top_k_and_is_not_sent_seed_penalties_or_top_p_beside_it(
    router: Router, anthropic_server: LocalAnthropicServer, stream: bool
) -> None:
    if stream:
        routed = router.astream(_ask(temperature=0.2, **ALL), _on("claude"))
        assert isinstance([e async for e in routed][-1], StreamDone)
        decision = routed.decision
    else:
        decision = (await router.acomplete(_ask(temperature=0.2, **ALL), _on("claude"))).decision
    body = anthropic_server.requests[-1].body
    # Claude Sonnet and Haiku 4.5 and Opus 4.1 on answer temperature with top_p by a 400.
    assert {k: body.get(k) for k in (*ALL, "temperature")} == {
        "top_p": None, "seed": None, "frequency_penalty": None, "presence_penalty": None, "top_k": 20,
        "temperature": 0.2,
    }  # fmt: skip
    assert decision is not None
    assert decision.reasons[-2:] == (
        "seed, frequency_penalty, presence_penalty not sent: the API of claude (provider anthropic) "
        "does not take them",
        "top_p not sent: the API of claude (provider anthropic) takes temperature or top_p, not both "
        "(temperature kept)",
    )


async def test_settings_every_api_takes_leave_the_reasons_alone(
    router: Router, anthropic_server: LocalAnthropicServer
) -> None:
    plain = router.decide(_ask(), _on("claude"))
    sampled = (await router.acomplete(_ask(top_p=0.9, top_k=5), _on("claude"))).decision
    assert sampled.reasons == plain.reasons
    assert (anthropic_server.requests[-1].body["top_p"], anthropic_server.requests[-1].body["top_k"]) == (
        0.9,
        5,
    )
    assert "not sent" not in " ".join(router.decide(_ask(top_p=0.5), _on("small")).reasons)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"top_p": 1.5}, "top_p must be a number from 0 to 1, got 1.5"),
        ({"top_p": -0.1}, "top_p must be a number from 0 to 1"),
        ({"top_p": float("nan")}, "top_p must be a number from 0 to 1, got nan"),
        ({"frequency_penalty": 2.5}, "frequency_penalty must be a number from -2 to 2, got 2.5"),
        ({"presence_penalty": -3}, "presence_penalty must be a number from -2 to 2, got -3"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
        ({"seed": True}, "seed must be an integer, got True"),
        ({"top_k": 0}, "top_k must be at least 1, got 0"),
        ({"top_p": "0.5"}, "top_p must be a number from 0 to 1, got '0.5'"),
        ({"temperature": 2.5}, "temperature must be a number from 0 to 2, got 2.5"),
        ({"temperature": -0.1}, "temperature must be a number from 0 to 2, got -0.1"),
    ],
)
def test_out_of_range_settings_are_refused_by_name(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidRequestError, match="^" + says.replace("(", r"\(").replace(".", r"\.")):
        _ask(**settings)


def test_the_edges_of_each_range_are_taken() -> None:
    request = _ask(top_p=0, seed=-3, frequency_penalty=-2, presence_penalty=2, top_k=1)
    assert (request.top_p, request.seed, request.top_k) == (0, -3, 1)


def test_the_sampling_settings_are_the_requests_own_fields() -> None:
    # One list, read by the providers, the proxy and both adapters: each name must be a ChatRequest field.
    import dataclasses

    from gearshift import SAMPLING_SETTINGS, ChatRequest

    assert set(SAMPLING_SETTINGS) <= {field.name for field in dataclasses.fields(ChatRequest)}


async def test_a_temperature_above_1_reaches_claude_as_1_and_the_reasons_say_so(
    router: Router, anthropic_server: LocalAnthropicServer, openai_server: LocalOpenAIServer
) -> None:
    """Anthropic's API takes temperature from 0 to 1 and answered 1.5 with a 400; OpenAI's goes to 2.
    Claude is sent 1, as Anthropic's own OpenAI layer caps it; an OpenAI model gets 1.5."""
    decision = (await router.acomplete(_ask(temperature=1.5), _on("claude"))).decision
    assert anthropic_server.requests[-1].body["temperature"] == 1.0
    assert (
        decision.reasons[-1]
        == "temperature 1.5 sent as 1: the API of claude (provider anthropic) takes 0 to 1"
    )
    await router.acomplete(_ask(temperature=1.5), _on("small"))
    assert openai_server.requests[-1].body["temperature"] == 1.5
    assert not any("temperature" in r for r in router.decide(_ask(temperature=1.0), _on("claude")).reasons)


async def test_a_stop_sequence_of_whitespace_alone_is_not_sent_to_claude(
    router: Router, anthropic_server: LocalAnthropicServer, openai_server: LocalOpenAIServer
) -> None:
    """Anthropic refuses a stop sequence of whitespace alone ("each stop sequence must contain
    non-whitespace"), which the local server now enforces: `stop=["\\n"]` failed on every Claude
    model. It is left out there (as Anthropic's own OpenAI layer does), and the reasons say so; an
    OpenAI model is sent it."""
    asked = ChatRequest((Message.user("One line, please."),), stop=("\n", "END"))
    decision = (await router.acomplete(asked, _on("claude"))).decision
    assert anthropic_server.requests[-1].body["stop_sequences"] == ["END"]
    assert decision.reasons[-1] == (
        "stop sequences '\\n' not sent: the API of claude (provider anthropic) takes only ones holding a "
        "non-whitespace character"
    )
    await router.acomplete(asked, _on("small"))
    assert openai_server.requests[-1].body["stop"] == ["\n", "END"]
    only_blank = ChatRequest((Message.user("One line, please."),), stop=("\n",))
    await router.acomplete(only_blank, _on("claude"))
    assert "stop_sequences" not in anthropic_server.requests[-1].body
