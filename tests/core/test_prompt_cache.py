"""Prompt caching and long-context prices end to end: `cache_control` reaches Anthropic, cache writes and
reads are priced at their own rates in every cost figure, a run stays on the model whose cache is warm
when that is cheaper, and a long request is priced at its long-context tier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gearshift import (
    CallerHints,
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    PriceTier,
    Router,
    RulesPolicy,
    SignalScorer,
    StepContext,
    Usage,
)
from gearshift.providers import AnthropicProvider
from gearshift.providers._anthropic_convert import request_params
from gearshift.testing import LocalAnthropicServer

KEY = "sk-ant-cache-test-31f0c2"
SMALL = ModelPrices(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25, cache_write_1h=2.0)
LARGE = ModelPrices(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75, cache_write_1h=6.0)
HANDBOOK = "Policy handbook. " + " ".join(
    f"Rule {n}: refunds within {n} days need a receipt." for n in range(400)
)


@pytest.fixture
def server() -> Iterator[LocalAnthropicServer]:
    with LocalAnthropicServer(models=("claude-small", "claude-large"), api_key=KEY) as local:
        yield local


def _registry(large: ModelPrices = LARGE) -> ModelRegistry:
    return ModelRegistry(
        [
            ModelSpec(id="small", provider="anthropic", model="claude-small", tier=1, prices=SMALL),
            ModelSpec(id="large", provider="anthropic", model="claude-large", tier=2, prices=large),
        ]
    )


@pytest.fixture
async def router(server: LocalAnthropicServer) -> AsyncIterator[Router]:
    provider = AnthropicProvider(api_key=KEY, base_url=server.base_url, timeout=10.0)
    async with Router(_registry(), policy=SignalScorer(), providers=[provider]) as routed:
        yield routed


def _cached_request(question: str, max_tokens: int = 40, ttl: str | None = None) -> ChatRequest:
    mark = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    system = Message("system", HANDBOOK, cache_control=mark)
    return ChatRequest((system, Message.user(question)), max_tokens=max_tokens)


def _by_hand(prices: ModelPrices, usage: Usage) -> float:
    """The bill, from the usage and the price list, without gearshift's pricing code."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    five_minute = usage.cache_write_tokens - usage.cache_write_1h_tokens
    return (
        uncached * prices.input
        + usage.cache_read_tokens * (prices.cache_read or prices.input)
        + five_minute * (prices.cache_write or prices.input)
        + usage.cache_write_1h_tokens * (prices.cache_write_1h or prices.input)
        + usage.output_tokens * prices.output
    ) / 1e6


def test_cache_control_reaches_anthropic_on_the_last_block_of_its_message() -> None:
    spec = _registry()["small"]
    request = ChatRequest(
        (
            Message("system", "You are terse."),
            Message("system", HANDBOOK, cache_control={"type": "ephemeral", "ttl": "1h"}),
            Message.user("first"),
            Message("user", "second", cache_control={"type": "ephemeral"}),
        )
    )
    params, _ = request_params(spec, request, default_max_tokens=100)
    assert params["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    assert params["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first"},
                {"type": "text", "text": "second", "cache_control": {"type": "ephemeral"}},
            ],
        }
    ]
    plain, _ = request_params(
        spec, ChatRequest((Message.system("a"), Message.user("b"))), default_max_tokens=9
    )
    assert plain["system"] == "a"  # without a breakpoint, the system prompt stays one text


async def test_cache_writes_and_reads_are_priced_at_their_own_rates(
    router: Router, server: LocalAnthropicServer
) -> None:
    first = await router.acomplete(_cached_request("Can I return shoes?"))
    second = await router.acomplete(_cached_request("Can I return a hat?"))
    wire = [r.body for r in server.requests if r.path == "/v1/messages"]
    assert all(body["system"][0]["cache_control"] == {"type": "ephemeral"} for body in wire)
    write, read = first.usage, second.usage
    assert write.cache_write_tokens > 2000 and write.cache_read_tokens == 0
    assert read.cache_read_tokens == write.cache_write_tokens and read.cache_write_tokens == 0
    for answer in (first, second):
        assert answer.cost_usd == pytest.approx(_by_hand(SMALL, answer.usage), rel=1e-12)
        assert answer.response.cost_usd == answer.cost_usd == answer.attempts[0].cost_usd
    # The write costs 1.25x input, the read a tenth of it: the second call is far cheaper.
    plain = SMALL.cost(Usage(write.input_tokens, write.output_tokens))
    assert first.cost_usd > plain > 3 * second.cost_usd


@pytest.mark.parametrize("stream", [False, True])
async def test_one_hour_cache_writes_are_priced_at_twice_input(
    router: Router, server: LocalAnthropicServer, stream: bool
) -> None:
    # Anthropic reports the 1-hour writes apart (`usage.cache_creation.ephemeral_1h_input_tokens`,
    # in `message_start` when streamed) and bills them at 2x input, not the 5-minute 1.25x.
    request = _cached_request("Can I return shoes?", ttl="1h")
    if stream:
        chunks = router.astream(request)
        async for _ in chunks:
            pass
        assert chunks.result is not None
        answer = chunks.result
    else:
        answer = await router.acomplete(request)
    usage = answer.usage
    assert usage.cache_write_tokens > 2000 and usage.cache_write_1h_tokens == usage.cache_write_tokens
    assert answer.cost_usd == pytest.approx(_by_hand(SMALL, usage), rel=1e-12)
    assert answer.cost_usd > SMALL.cost(Usage(usage.input_tokens, usage.output_tokens)) * 1.9
    again = await router.acomplete(_cached_request("Can I return a hat?", ttl="1h"))
    assert again.usage.cache_read_tokens == usage.cache_write_tokens
    assert again.usage.cache_write_1h_tokens == 0


async def test_a_run_stays_on_the_model_whose_cache_is_warm_when_that_is_cheaper(router: Router) -> None:
    run = StepContext(run_id="run-7")
    question = "Summarise rule 3."
    assert router.decide(_cached_request(question), run).model == "small"  # the policy's own choice

    strong = StepContext(run_id="run-7", hints=CallerHints(min_tier=2))
    warmed = await router.acomplete(_cached_request("Plan the refund."), strong)
    assert warmed.model_id == "large" and warmed.usage.cache_write_tokens > 0

    decision = router.decide(_cached_request(question), run)
    assert decision.model == "large"
    assert decision.fallbacks[0] == "small"
    reason = decision.reasons[-1]
    assert reason.startswith("stayed on large: its prompt cache is warm (")
    assert "for moving to small" in reason
    answer = await router.acomplete(_cached_request(question), run)
    assert answer.model_id == "large" and answer.usage.cache_read_tokens > 2000
    assert answer.cost_usd == pytest.approx(_by_hand(LARGE, answer.usage), rel=1e-12)
    assert answer.cost_usd < _by_hand(SMALL, Usage(answer.usage.input_tokens, answer.usage.output_tokens))

    # Another run has no warm cache; and a long answer makes moving cheaper, so the run moves.
    assert router.decide(_cached_request(question), StepContext(run_id="run-8")).model == "small"
    assert router.decide(_cached_request(question, max_tokens=4000), run).model == "small"


async def test_a_long_request_is_priced_at_its_long_context_tier(server: LocalAnthropicServer) -> None:
    tiered = LARGE.model_copy(
        update={
            "long_context": (PriceTier(above=3000, input=6.0, output=22.5, cache_read=0.6, cache_write=7.5),)
        }
    )
    provider = AnthropicProvider(api_key=KEY, base_url=server.base_url, timeout=10.0)
    async with Router(_registry(tiered), policy=SignalScorer(), providers=[provider]) as router:
        hints = StepContext(hints=CallerHints(min_tier=2))
        short = await router.acomplete(ChatRequest((Message.user("Is rule 3 fair?"),), max_tokens=40), hints)
        long_request = ChatRequest((Message.user(HANDBOOK + " Is rule 3 fair?"),), max_tokens=40)
        decision = await router.adecide(long_request, hints)
        long = await router.acomplete(long_request, hints)
    assert short.usage.input_tokens < 3000 < long.usage.input_tokens
    assert short.cost_usd == pytest.approx(_by_hand(LARGE, short.usage), rel=1e-12)
    long_rates = ModelPrices(input=6.0, output=22.5, cache_read=0.6, cache_write=7.5)
    assert long.cost_usd == pytest.approx(_by_hand(long_rates, long.usage), rel=1e-12)
    # The estimate is made at the request's own size, so it is in the long-context tier too.
    assert decision.estimated_cost_usd > _by_hand(LARGE, Usage(long.usage.input_tokens, 40)) * 1.5


async def test_a_model_a_rule_named_is_kept_even_when_another_cache_is_warm(
    server: LocalAnthropicServer,
) -> None:
    provider = AnthropicProvider(api_key=KEY, base_url=server.base_url, timeout=10.0)
    registry = ModelRegistry(
        [
            *_registry(),
            ModelSpec(id="small-b", provider="anthropic", model="claude-small", tier=1, prices=LARGE),
        ]
    )
    rule = RulesPolicy.from_config([{"model": "small-b"}], fallback=SignalScorer(), registry=registry)
    async with Router(registry, policy=rule, providers=[provider]) as router:
        run = StepContext(run_id="run-9")
        await router.acomplete(
            _cached_request("Plan."), StepContext(run_id="run-9", hints=CallerHints(min_tier=2))
        )
        assert router.warm_caches.get("run-9", router.clock()) is not None
        assert router.decide(_cached_request("Summarise rule 3."), run).model == "small-b"
