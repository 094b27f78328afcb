"""A request's `reasoning_effort` through `Router` and the real SDKs to the local servers: it reaches
OpenAI's reasoning models (`ModelSpec.reasoning`) and no other, which in turn are not sent the
`temperature`, `top_p` and penalties they refuse with a 400; the decision's reasons say what was left
out, and a value OpenAI does not take is refused by name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gearshift import (
    REASONING_EFFORTS,
    CallerHints,
    ChatRequest,
    InvalidRequestError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    NoEligibleModel,
    Router,
    SignalScorer,
    StepContext,
    StreamDone,
    load_config,
)
from gearshift.config._defaults import default_models
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.providers._openai import OpenAIProvider
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

OPENAI_KEY, ANTHROPIC_KEY = "sk-local-effort", "sk-ant-local-effort"


@pytest.fixture
def openai_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("plain", "reasoner"), api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[LocalAnthropicServer]:
    with LocalAnthropicServer(models=("claude-large",), api_key=ANTHROPIC_KEY) as server:
        yield server


def _spec(model_id: str, provider: str, tier: int, *, effort: bool = False) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        model=model_id if provider == "openai" else "claude-large",
        tier=tier,
        prices=ModelPrices(input=float(tier), output=4.0 * tier),
        reasoning=effort,
    )


@pytest.fixture
async def router(
    openai_server: LocalOpenAIServer, anthropic_server: LocalAnthropicServer
) -> AsyncIterator[Router]:
    registry = ModelRegistry(
        [
            _spec("plain", "openai", 1),
            _spec("reasoner", "openai", 2, effort=True),
            _spec("claude", "anthropic", 3),
        ]
    )
    providers = [
        OpenAIProvider(api_key=OPENAI_KEY, base_url=openai_server.base_url, timeout=5.0),
        AnthropicProvider(api_key=ANTHROPIC_KEY, base_url=anthropic_server.base_url, timeout=5.0),
    ]
    async with Router(registry, policy=SignalScorer(), providers=providers) as routed:
        yield routed


def _ask(effort: str | None = "low") -> ChatRequest:
    return ChatRequest((Message.user("Plan a three-step proof."),), reasoning_effort=effort)


def _on(model: str) -> StepContext:
    return StepContext(hints=CallerHints(force_model=model))


@pytest.mark.parametrize("stream", [False, True])
async def test_a_model_marked_for_it_is_sent_reasoning_effort(
    router: Router, openai_server: LocalOpenAIServer, stream: bool
) -> None:
    if stream:
        routed = router.astream(_ask("high"), _on("reasoner"))
        assert isinstance([e async for e in routed][-1], StreamDone)
        decision = routed.decision
    else:
        decision = (await router.acomplete(_ask("high"), _on("reasoner"))).decision
    assert openai_server.requests[-1].body["reasoning_effort"] == "high"
    assert decision is not None
    assert not any("not sent" in reason for reason in decision.reasons)


async def test_a_model_not_marked_gets_the_request_without_it_and_the_reasons_say_so(
    router: Router, openai_server: LocalOpenAIServer
) -> None:
    decision = (await router.acomplete(_ask(), _on("plain"))).decision
    assert "reasoning_effort" not in openai_server.requests[-1].body
    assert decision.reasons[-1] == "reasoning_effort not sent: plain is not a reasoning model"


async def test_anthropic_is_never_sent_it_nor_thinking(
    router: Router, anthropic_server: LocalAnthropicServer
) -> None:
    decision = (await router.acomplete(_ask(), _on("claude"))).decision
    body = anthropic_server.requests[-1].body
    assert "reasoning_effort" not in body and "thinking" not in body
    assert decision.reasons[-1] == (
        "reasoning_effort not sent: the API of claude (provider anthropic) does not take it"
    )


async def test_without_reasoning_effort_nothing_is_sent_or_said(
    router: Router, openai_server: LocalOpenAIServer
) -> None:
    decision = (await router.acomplete(_ask(None), _on("reasoner"))).decision
    assert "reasoning_effort" not in openai_server.requests[-1].body
    assert decision.reasons == router.decide(_ask(None), _on("reasoner")).reasons
    assert not any("not sent" in reason for reason in decision.reasons)


@pytest.mark.parametrize("effort", REASONING_EFFORTS)
def test_every_value_openai_takes_is_taken(effort: str) -> None:
    assert _ask(effort).reasoning_effort == effort


@pytest.mark.parametrize("effort", ["hgih", "", "HIGH", "max"])
def test_a_value_openai_does_not_take_is_refused_by_name(effort: str) -> None:
    says = rf"^reasoning_effort must be one of none, minimal, low, medium, high, xhigh, got '{effort}'$"
    with pytest.raises(InvalidRequestError, match=says):
        _ask(effort)


def test_the_built_in_ladder_marks_the_gpt_5_models_only() -> None:
    marked = {spec.id for spec in default_models() if spec.reasoning}
    assert marked == {"gpt-5-nano", "gpt-5-mini", "gpt-5"}


def test_a_config_file_marks_a_model(tmp_path: Path) -> None:
    config = tmp_path / "gearshift.toml"
    config.write_text(
        '[[models]]\nid = "o-small"\nprovider = "openai"\nmodel = "o4-mini"\ntier = 1\n'
        "prices = { input = 1.1, output = 4.4 }\nreasoning = true\n\n"
        '[[models]]\nid = "small"\nprovider = "openai"\nmodel = "gpt-4.1-nano"\ntier = 1\n'
        "prices = { input = 0.1, output = 0.4 }\n",
        encoding="utf-8",
    )
    registry = load_config(config).registry()
    assert (registry["o-small"].reasoning, registry["small"].reasoning) == (
        True,
        False,
    )


SAMPLED = {"temperature": 0.2, "top_p": 0.5, "seed": 3, "frequency_penalty": 0.1, "presence_penalty": 0.2}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_reasoning_model_is_not_sent_the_settings_it_refuses(
    router: Router, openai_server: LocalOpenAIServer, stream: bool
) -> None:
    """gpt-5 and the o-series answer `temperature` 0.2 with a 400 ("Only the default (1) value is
    supported"), and `top_p` and the penalties too: a LangChain agent at temperature 0 over the
    built-in ladder had every gpt-5 call refused. They are left out; `seed` still goes."""
    request = ChatRequest((Message.user("Plan a three-step proof."),), reasoning_effort="low", **SAMPLED)
    if stream:
        routed = router.astream(request, _on("reasoner"))
        assert isinstance([e async for e in routed][-1], StreamDone)
        decision = routed.decision
    else:
        decision = (await router.acomplete(request, _on("reasoner"))).decision
    body = openai_server.requests[-1].body
    assert {k: body.get(k) for k in (*SAMPLED, "reasoning_effort")} == {
        "temperature": None, "top_p": None, "seed": 3, "frequency_penalty": None, "presence_penalty": None,
        "reasoning_effort": "low",
    }  # fmt: skip
    assert decision is not None
    assert decision.reasons[-1] == (
        "temperature, top_p, frequency_penalty, presence_penalty not sent: reasoner is a reasoning model, "
        "which refuses them"
    )


async def test_a_model_that_is_not_a_reasoning_model_is_sent_them_all(
    router: Router, openai_server: LocalOpenAIServer
) -> None:
    request = ChatRequest((Message.user("Plan a three-step proof."),), **SAMPLED)
    decision = (await router.acomplete(request, _on("plain"))).decision
    assert {k: openai_server.requests[-1].body.get(k) for k in SAMPLED} == SAMPLED
    assert not any("not sent" in reason for reason in decision.reasons)


async def test_each_kind_of_setting_left_out_has_its_own_reason(router: Router) -> None:
    request = ChatRequest(
        (Message.user("Plan a three-step proof."),), temperature=0.3, seed=1, top_k=4, reasoning_effort="high"
    )
    assert router.decide(request, _on("plain")).reasons[-2:] == (
        "top_k not sent: the API of plain (provider openai) does not take it",
        "reasoning_effort not sent: plain is not a reasoning model",
    )
    assert router.decide(request, _on("reasoner")).reasons[-2:] == (
        "top_k not sent: the API of reasoner (provider openai) does not take it",
        "temperature not sent: reasoner is a reasoning model, which refuses it",
    )
    # Claude takes temperature; its API has no seed or reasoning_effort.
    assert router.decide(request, _on("claude")).reasons[-1] == (
        "seed, reasoning_effort not sent: the API of claude (provider anthropic) does not take them"
    )


async def test_a_request_with_stop_sequences_goes_to_a_model_that_takes_them(
    router: Router, openai_server: LocalOpenAIServer
) -> None:
    """gpt-5 and the o-series answer `stop` with a 400 ("Unsupported parameter"), and a ReAct agent
    relies on its stop sequence: such a request is not sent to a reasoning model."""
    request = ChatRequest((Message.user("Thought: look it up"),), stop=("Observation:",))
    from_tier_2 = router.decide(request, StepContext(hints=CallerHints(min_tier=2)))
    assert from_tier_2.model == "claude"  # tier 2's only model, a reasoning one, is passed over
    with pytest.raises(
        NoEligibleModel, match="reasoner: it is a reasoning model, which refuses stop sequences"
    ):
        router.decide(request, _on("reasoner"))
    answer = await router.acomplete(request, StepContext(hints=CallerHints(max_tier=2)))
    assert answer.model_id == "plain" and openai_server.requests[-1].body["stop"] == ["Observation:"]
