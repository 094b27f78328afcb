"""Issue 16's strategies through the LangChain chat model: `cache_control` blocks reach Anthropic and the
cache is priced; a model with two deployments keeps answering while one of them fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from gearshift import Deployment, ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer, Usage
from gearshift._bridge import run_sync
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.testing import Fail, LocalAnthropicServer, LocalOpenAIServer
from gearshift_langchain import RoutedChatModel

PRICES = ModelPrices(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)
HANDBOOK = " ".join(f"Rule {n}: refunds within {n} days need a receipt." for n in range(300))


@pytest.fixture
def anthropic_router() -> Iterator[tuple[Router, LocalAnthropicServer]]:
    with LocalAnthropicServer(models=("claude-small",), api_key="sk-ant-lc-cache-8d1") as server:
        provider = AnthropicProvider(api_key="sk-ant-lc-cache-8d1", base_url=server.base_url, timeout=10.0)
        spec = ModelSpec(id="small", provider="anthropic", model="claude-small", tier=1, prices=PRICES)
        router = Router(ModelRegistry([spec]), policy=SignalScorer(), providers=[provider])
        yield router, server
        run_sync(router.aclose())


def test_cache_control_blocks_reach_anthropic_and_the_cache_is_priced(
    anthropic_router: tuple[Router, LocalAnthropicServer],
) -> None:
    router, server = anthropic_router
    model = RoutedChatModel(router=router)
    system = SystemMessage(
        content=[{"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral"}}]
    )
    answers = [model.invoke([system, HumanMessage(question)]) for question in ("Shoes?", "Hats?")]
    assert all(r.body["system"][0]["cache_control"] == {"type": "ephemeral"} for r in server.requests)
    written, read = (answer.usage_metadata for answer in answers)
    assert written is not None and read is not None
    assert written["input_token_details"]["cache_creation"] > 1000
    assert read["input_token_details"]["cache_read"] == written["input_token_details"]["cache_creation"]
    for answer in answers:
        assert isinstance(answer, AIMessage)
        usage = answer.usage_metadata
        assert usage is not None
        details = usage["input_token_details"]
        billed = Usage(
            usage["input_tokens"],
            usage["output_tokens"],
            cache_read_tokens=details.get("cache_read", 0),
            cache_write_tokens=details.get("cache_creation", 0),
        )
        assert answer.response_metadata["gearshift"]["cost_usd"] == pytest.approx(PRICES.cost(billed))
    costs = [a.response_metadata["gearshift"]["cost_usd"] for a in answers]
    assert costs[0] > 5 * costs[1]  # the write is dearer than input, the read a tenth of it


def test_a_model_with_two_deployments_answers_while_one_fails() -> None:
    with (
        LocalOpenAIServer(models=("small",)) as east,
        LocalOpenAIServer(models=("small",)) as west,
    ):
        providers = [
            OpenAIProvider("east", base_url=east.base_url, require_key=False, timeout=10.0),
            OpenAIProvider("west", base_url=west.base_url, require_key=False, timeout=10.0),
        ]
        spec = ModelSpec(
            id="small",
            provider="east",
            model="small",
            tier=1,
            prices=ModelPrices(input=1, output=2),
            deployments=(Deployment(provider="west"),),
        )
        router = Router(ModelRegistry([spec]), policy=SignalScorer(), providers=providers)
        model = RoutedChatModel(router=router)
        east.script("small", *[Fail(503)] * 3)
        try:
            answers = [model.invoke(f"question {n}") for n in range(4)]
        finally:
            run_sync(router.aclose())
        east_calls = [r for r in east.requests if r.path.endswith("/chat/completions")]
        west_calls = [r for r in west.requests if r.path.endswith("/chat/completions")]
    assert all(a.response_metadata["gearshift"]["model_id"] == "small" for a in answers)
    # East failed twice (each time west answered within the same call); then its error rate ranked
    # it behind west, which answered every question.
    assert len(east_calls) == 2 and len(west_calls) == 4
    attempts = [a for answer in answers for a in answer.response_metadata["gearshift"]["attempts"]]
    # Each attempt names its deployment: the two that failed were east's, every answer came from west.
    assert sorted((a["provider"], a["ok"], a["probe"]) for a in attempts) == [
        ("east", False, False),
        ("east", False, False),
        *[("west", True, False)] * 4,
    ]
