"""Attacks on a hard limit through the router: a verbose model, no `max_tokens`, parallel callers.

The reservation must be a true bound on every store: the router asks each provider for no more output
than it reserved, so a model that would write 10x the estimate is cut off and spend stays within the
limit to the nano-dollar. A provider that bills more anyway is recorded in full, reported, and the
limit refuses what follows. A step the budget refuses is never moved to a pricier model.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gearshift import (
    BudgetExceeded,
    ChatRequest,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    PriceTier,
    RoutedResponse,
    Router,
    ScorerConfig,
    SignalScorer,
    StepContext,
    TextDelta,
    ToolSpec,
    Usage,
    open_decision_log,
)
from gearshift.budgets import (
    BudgetLedger,
    BudgetLimit,
    BudgetStore,
    KeyUsage,
    MemoryStore,
    ReserveResult,
    UsageQuery,
)
from gearshift.budgets._spend_index import to_nano
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.routing._budget_fit import USEFUL_OUTPUT_TOKENS
from gearshift.routing._decide import DEFAULT_OUTPUT_TOKENS
from gearshift.signals._tokens import estimate_request_tokens
from gearshift.testing import Delay, Fail, LocalAnthropicServer, LocalOpenAIServer, Reply

KEY = "sk-spend-bound-5e1f"
PROMPT = "What is the capital of France?"
HARD = (
    "Prove that the sum of the first n odd numbers is n squared, then derive a closed form for the sum "
    "of the first n squares step by step, and analyse the complexity of computing it."
)
# A scorer that weighs math and reasoning markers (off by default), so that HARD goes to the top tier.
MARKERS = ScorerConfig(math_weight=0.6, reasoning_weight=0.6)
VERBOSE = Reply(text="word " * (10 * DEFAULT_OUTPUT_TOKENS))  # 10x the output the router estimates
CALLERS = 8


def _spec(model_id: str, tier: int, price: float, provider: str = "local", **extra: object) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price * 4),
        **extra,  # type: ignore[arg-type]
    )


REGISTRY = ModelRegistry([_spec("small", 1, 0.5), _spec("large", 2, 2.5)])


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large"), api_key=KEY) as server:
        yield server


def _provider(server: LocalOpenAIServer, field: str = "max_tokens") -> OpenAIProvider:
    return OpenAIProvider(
        name="local",
        api_key=KEY,
        base_url=server.base_url,
        timeout=5.0,
        max_tokens_field=field,  # type: ignore[arg-type]
    )


def _router(provider: OpenAIProvider | AnthropicProvider, ledger: BudgetLedger, **options: object) -> Router:
    registry = options.pop("registry", REGISTRY)
    return Router(registry, policy=SignalScorer(MARKERS), providers=[provider], budgets=ledger, **options)  # type: ignore[arg-type]


async def _until_refused(
    router: Router, context: StepContext, callers: int = CALLERS
) -> list[RoutedResponse]:
    """`callers` concurrent loops of calls without `max_tokens`, each until the budget refuses it."""
    answers: list[RoutedResponse] = []

    async def caller() -> None:
        while True:
            try:
                answers.append(await router.acomplete(ChatRequest(messages=(Message.user(PROMPT),)), context))
            except BudgetExceeded:
                return

    await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(callers))), timeout=60)
    return answers


async def _spent_usd(ledger: BudgetLedger, key: str) -> float:
    (usage,) = await ledger.usage([key])
    assert usage.reserved_usd == 0  # every reservation was settled
    return usage.spent_usd


# -- the overrun attack, on every store ---------------------------------------------------------


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_parallel_verbose_calls_without_max_tokens_never_pass_a_hard_limit(
    store: BudgetStore, server: LocalOpenAIServer, field: str
) -> None:
    limit = 0.005  # about 4 calls of the default 512 output tokens on `small`
    ledger = BudgetLedger(store, [BudgetLimit(name="cap", key="agent:researcher", usd=limit)])
    server.script("small", *[VERBOSE] * 100)
    server.script("large", *[VERBOSE] * 100)
    provider = _provider(server, field)
    try:
        answers = await _until_refused(_router(provider, ledger), StepContext(agent_id="researcher"))
    finally:
        await provider.aclose()

    assert answers, "the limit fits a few calls"
    spent = await _spent_usd(ledger, "agent:researcher")
    assert to_nano(spent) <= to_nano(limit)  # overspend exactly 0
    assert spent == pytest.approx(sum(a.cost_usd for a in answers))  # and every bill was recorded
    for recorded in server.requests:
        cap = recorded.body[field]
        assert 0 < cap <= DEFAULT_OUTPUT_TOKENS
        assert recorded.body.get("max_tokens" if field != "max_tokens" else "max_completion_tokens") is None
    for answer in answers:
        assert answer.usage.output_tokens <= DEFAULT_OUTPUT_TOKENS  # cut off, not 10x
        assert answer.response.finish_reason == "length"


async def test_an_anthropic_model_is_capped_at_the_reservation_not_at_its_default_4096(
    anthropic_server: LocalAnthropicServer, anthropic_provider: AnthropicProvider
) -> None:
    registry = ModelRegistry([_spec("claude-small", 1, 0.5, provider="anthropic")])
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=0.004)])
    anthropic_server.script("claude-small", *[VERBOSE] * 50)
    router = _router(anthropic_provider, ledger, registry=registry)
    answers = await _until_refused(router, StepContext(agent_id="writer"))

    assert answers
    assert to_nano(await _spent_usd(ledger, "agent:writer")) <= to_nano(0.004)
    caps = {r.body["max_tokens"] for r in anthropic_server.requests}
    assert caps and max(caps) <= DEFAULT_OUTPUT_TOKENS
    assert all(a.response.finish_reason == "length" for a in answers)  # stop_reason max_tokens


@pytest.mark.parametrize(("ttl", "factor"), [(None, 1.25), ("1h", 2.0)])
@pytest.mark.parametrize("written", [True, False], ids=["write-prices", "no-write-prices"])
async def test_prompt_cache_writes_never_take_spend_past_a_hard_limit(
    anthropic_provider: AnthropicProvider, tmp_path: Path, ttl: str | None, factor: float, written: bool
) -> None:
    """The reservation priced the input at the plain rate, but Anthropic bills a prompt-cache write at
    1.25x input (2x for the 1-hour cache): calls that each wrote a new prefix overspent the limit.
    Prices built in Python without the write rates (`no-write-prices`) billed and reserved writes at
    1x, as only a gearshift.toml got Anthropic's rates: the router now gives them to any registry."""
    writes = {"cache_write": 0.625, "cache_write_1h": 1.0} if written else {}
    price = ModelPrices(input=0.5, output=2.0, cache_read=0.05, **writes)
    spec = ModelSpec(id="claude-small", provider="anthropic", model="claude-small", tier=1, prices=price)
    limit = 0.03
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=limit)])
    log_path = tmp_path / "decisions.jsonl"
    log = open_decision_log(log_path)
    router = _router(anthropic_provider, ledger, registry=ModelRegistry([spec]), decision_log=log)
    mark = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    answers: list[RoutedResponse] = []
    with pytest.raises(BudgetExceeded):
        for n in range(100):  # a new prefix each time: every call writes its whole system prompt
            handbook = f"Handbook {n}. " + "Refunds need a receipt. " * 2000
            request = ChatRequest((Message("system", handbook, cache_control=mark), Message.user(PROMPT)))
            answers.append(await router.acomplete(request, StepContext(agent_id="writer")))
    assert len(answers) >= 2 and all(a.usage.cache_write_tokens > 10_000 for a in answers)
    assert answers[0].cost_usd > answers[0].usage.input_tokens * price.input / 1e6 * factor
    assert to_nano(await _spent_usd(ledger, "agent:writer")) <= to_nano(limit)
    router.close()
    kinds = [json.loads(line)["kind"] for line in log_path.read_text().splitlines()]
    assert "budget_overrun" not in kinds and kinds.count("attempt") == len(answers)


async def test_a_stream_is_capped_at_its_reservation_too(server: LocalOpenAIServer) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    server.script("small", VERBOSE)
    provider = _provider(server)
    try:
        stream = _router(provider, ledger).astream(PROMPT, StepContext(agent_id="streamer"))
        text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    finally:
        await provider.aclose()
    assert stream.result is not None
    assert server.requests[0].body["max_tokens"] == DEFAULT_OUTPUT_TOKENS
    assert stream.result.usage.output_tokens <= DEFAULT_OUTPUT_TOKENS
    assert 0 < len(text.split()) <= DEFAULT_OUTPUT_TOKENS  # a tenth of what the model would write


async def test_the_cap_shrinks_to_what_the_budget_still_affords(server: LocalOpenAIServer) -> None:
    # $0.00025 affords the input and about 100 output tokens on `small` ($2 per million out).
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=0.00025)])
    server.script("small", VERBOSE)
    provider = _provider(server)
    try:
        answer = await _router(provider, ledger).acomplete(PROMPT, StepContext(agent_id="frugal"))
    finally:
        await provider.aclose()
    cap = server.requests[0].body["max_tokens"]
    assert USEFUL_OUTPUT_TOKENS <= cap < DEFAULT_OUTPUT_TOKENS
    assert answer.usage.output_tokens <= cap
    assert to_nano(await _spent_usd(ledger, "agent:frugal")) <= to_nano(0.00025)


async def test_the_escalate_tool_offered_with_a_step_is_reserved_as_input(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """A model below the top tier is sent an `escalate` tool of the router's own, whose schema the
    provider bills as input; the reservation counted only the caller's request, so a step capped to
    the last of a hard limit overspent it by the tool's tokens (and logged a `budget_overrun`)."""
    limit = 0.00025  # the input and about 100 output tokens on `small`: the cap takes all that is left
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=limit)])
    server.script("small", VERBOSE)
    provider = _provider(server)
    log_path = tmp_path / "decisions.jsonl"
    router = _router(provider, ledger, self_escalation=True, decision_log=open_decision_log(log_path))
    try:
        answer = await router.acomplete(PROMPT, StepContext(agent_id="frugal"))
    finally:
        await router.aclose()
    assert "escalate" in [tool["function"]["name"] for tool in server.requests[0].body["tools"]]
    assert answer.usage.output_tokens == server.requests[0].body["max_tokens"]  # it wrote all it could
    assert to_nano(await _spent_usd(ledger, "agent:frugal")) <= to_nano(limit)
    kinds = [json.loads(line)["kind"] for line in log_path.read_text().splitlines()]
    assert "budget_overrun" not in kinds


async def test_the_response_schema_is_reserved_as_input(
    anthropic_server: LocalAnthropicServer, anthropic_provider: AnthropicProvider, tmp_path: Path
) -> None:
    """A `response_schema` goes out with the request (Anthropic's forced answer tool, OpenAI's
    `response_format`) and is billed as input, but the reservation counted only the messages and
    tools, so a step capped to the last of a hard limit overspent it by the schema's tokens."""
    registry = ModelRegistry([_spec("claude-small", 1, 0.5, provider="anthropic")])
    fields = {
        f"field_{n}": {"type": "string", "description": f"The {n}th finding, in words."} for n in range(40)
    }
    schema = {"type": "object", "properties": fields}
    limit = 0.0012  # the prompt, the schema and about 100 output tokens: the cap takes all that is left
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=limit)])
    anthropic_server.script("claude-small", VERBOSE)
    log_path = tmp_path / "decisions.jsonl"
    router = _router(anthropic_provider, ledger, registry=registry, decision_log=open_decision_log(log_path))
    request = ChatRequest(messages=(Message.user(PROMPT),), response_schema=schema)
    answer = await router.acomplete(request, StepContext(agent_id="frugal"))
    router.close()
    assert answer.usage.output_tokens == anthropic_server.requests[0].body["max_tokens"]  # all it could
    assert to_nano(await _spent_usd(ledger, "agent:frugal")) <= to_nano(limit)
    kinds = [json.loads(line)["kind"] for line in log_path.read_text().splitlines()]
    assert "budget_overrun" not in kinds


async def test_anthropic_s_tool_use_system_prompt_is_reserved_as_input(
    anthropic_server: LocalAnthropicServer, anthropic_provider: AnthropicProvider, tmp_path: Path
) -> None:
    """Anthropic's API adds a system prompt of its own to a request with tools (346 tokens with
    `auto` on current models, per its docs) and bills it in `input_tokens`, but the reservation
    counted only what the request holds, so a step capped to the last of a hard limit overspent it
    by that prompt's price."""
    registry = ModelRegistry([_spec("claude-small", 1, 1, provider="anthropic")])
    lookup = ToolSpec(name="lookup", description="Look a city up.", parameters={"type": "object"})
    limit = 0.0008  # the prompt, the tool and about 100 output tokens: the cap takes all that is left
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=limit)])
    anthropic_server.script("claude-small", VERBOSE)
    log_path = tmp_path / "decisions.jsonl"
    router = _router(anthropic_provider, ledger, registry=registry, decision_log=open_decision_log(log_path))
    request = ChatRequest(messages=(Message.user(PROMPT),), tools=(lookup,))
    answer = await router.acomplete(request, StepContext(agent_id="frugal"))
    router.close()
    assert answer.usage.output_tokens == anthropic_server.requests[0].body["max_tokens"]  # all it could
    assert answer.usage.input_tokens > 346  # the server bills the tool-use system prompt, as the API does
    assert to_nano(await _spent_usd(ledger, "agent:frugal")) <= to_nano(limit)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert "budget_overrun" not in [record["kind"] for record in records]
    (decision,) = [record for record in records if record["kind"] == "decision"]
    billed = estimate_request_tokens(request) + 346  # the decision's estimate counts the prompt too
    assert decision["estimated_cost_usd"] == registry["claude-small"].estimate_cost(
        billed, DEFAULT_OUTPUT_TOKENS
    )


async def test_a_reservation_is_priced_at_the_long_context_tier_the_real_input_may_reach(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    """A model whose prices double past an input threshold was reserved at the tier of the estimated
    input: a prompt estimated just under the threshold and counted just over it by the provider was
    billed the whole call at twice the rates its reservation held (a `budget_overrun` of about the
    reservation itself). Now only the tokens the estimate missed are over."""
    request = ChatRequest(messages=(Message.user(PROMPT),))
    estimated = estimate_request_tokens(request)
    threshold, counted = estimated + 2, estimated + 3  # a real count 1.2 times the estimate would pass it
    tier = PriceTier(above=threshold, input=2, output=8)
    prices = ModelPrices(input=1, output=4, long_context=(tier,))
    registry = ModelRegistry([ModelSpec(id="small", provider="local", model="small", tier=1, prices=prices)])
    usage = {"prompt_tokens": counted, "completion_tokens": DEFAULT_OUTPUT_TOKENS}
    usage["total_tokens"] = counted + DEFAULT_OUTPUT_TOKENS
    choice = {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "length"}
    body = {"id": "c1", "object": "chat.completion", "created": 0, "model": "small", "choices": [choice]}
    server.script("small", Fail(200, body={**body, "usage": usage}))  # it wrote all it was allowed
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    log_path = tmp_path / "decisions.jsonl"
    router = _router(_provider(server), ledger, registry=registry, decision_log=open_decision_log(log_path))
    answer = await router.acomplete(request, StepContext(agent_id="long"))
    await router.aclose()
    assert server.requests[0].body["max_tokens"] == DEFAULT_OUTPUT_TOKENS
    assert answer.cost_usd == (counted * 2 + DEFAULT_OUTPUT_TOKENS * 8) / 1e6  # the whole call at the tier
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    overruns = [record for record in records if record["kind"] == "budget_overrun"]
    missed = (counted - estimated) * tier.input / 1e6  # the tokens the estimate missed, at the tier
    assert sum(record["excess_usd"] for record in overruns) <= missed + 1e-12


async def test_a_step_that_cannot_afford_a_useful_answer_is_refused_before_any_call(
    server: LocalOpenAIServer,
) -> None:
    # Enough for the prompt and a handful of output tokens: not for a useful answer on any model.
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="crumbs", key="agent:*", usd=0.000_03)])
    provider = _provider(server)
    try:
        with pytest.raises(BudgetExceeded, match="crumbs"):
            await _router(provider, ledger).acomplete(PROMPT, StepContext(agent_id="poor"))
    finally:
        await provider.aclose()
    assert server.requests == []


async def test_a_callers_max_tokens_is_what_is_reserved_and_sent(server: LocalOpenAIServer) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0)])
    server.script("small", VERBOSE)
    provider = _provider(server)
    try:
        request = ChatRequest(messages=(Message.user(PROMPT),), max_tokens=40)
        answer = await _router(provider, ledger).acomplete(request, StepContext(agent_id="exact"))
    finally:
        await provider.aclose()
    assert server.requests[0].body["max_tokens"] == 40
    assert answer.usage.output_tokens <= 40


async def test_without_a_refusing_limit_the_request_goes_out_as_the_caller_wrote_it(
    server: LocalOpenAIServer,
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", usd=1.0, mode="soft")])
    provider = _provider(server)
    try:
        await _router(provider, ledger).acomplete(PROMPT, StepContext(agent_id="free"))
    finally:
        await provider.aclose()
    assert "max_tokens" not in server.requests[0].body


# -- a provider that ignores the cap -----------------------------------------------------------


def _overbilled_completion(output_tokens: int) -> dict[str, object]:
    """What an OpenAI-compatible server that ignores `max_tokens` sends back: a long, billed answer."""
    return {
        "id": "chatcmpl-overrun",
        "object": "chat.completion",
        "created": 0,
        "model": "small",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * output_tokens},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": output_tokens,
            "total_tokens": 12 + output_tokens,
        },
    }


async def test_a_provider_that_bills_past_the_reservation_is_recorded_reported_and_closes_the_limit(
    server: LocalOpenAIServer, tmp_path: Path
) -> None:
    limit = 0.002
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="cap", key="agent:*", usd=limit)])
    server.script("small", Fail(200, body=_overbilled_completion(6000)))
    log_path = tmp_path / "decisions.jsonl"
    provider = _provider(server)
    router = _router(provider, ledger, decision_log=open_decision_log(log_path))
    try:
        answer = await router.acomplete(PROMPT, StepContext(agent_id="victim"))
        # The whole bill was recorded, never trimmed to the reservation: the limit is passed...
        spent = await _spent_usd(ledger, "agent:victim")
        assert spent == pytest.approx(answer.cost_usd) and spent > limit
        # ...so it is closed: the next call is refused before reaching any model.
        with pytest.raises(BudgetExceeded, match="cap"):
            await router.acomplete(PROMPT, StepContext(agent_id="victim"))
        assert len(server.requests) == 1
    finally:
        router.close()
        await provider.aclose()

    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    (overrun,) = [r for r in records if r["kind"] == "budget_overrun"]
    assert overrun["model"] == "small" and overrun["agent_id"] == "victim"
    assert overrun["billed_tokens"] == 6012 and overrun["reserved_tokens"] < overrun["billed_tokens"]
    assert overrun["billed_usd"] == pytest.approx(answer.cost_usd)
    assert overrun["excess_usd"] == pytest.approx(answer.cost_usd - overrun["reserved_usd"])


# -- a refusal does not fall through to a pricier model ----------------------------------------


class _SteppingClock:
    """Unix time that moves on `step` seconds at every reading: each ledger call happens later."""

    def __init__(self, step: float) -> None:
        self.now = 1_000_000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_a_step_the_budget_refused_on_the_cheap_model_is_not_answered_by_a_pricier_one(
    server: LocalOpenAIServer,
) -> None:
    # A rolling minute, and a clock that moves 30 s per ledger call: the spend that fills the limit
    # counts when the step plans and reserves on `small`, and has left the window by the time the
    # chain would reserve on `large`, just as other callers' reservations come and go under contention.
    clock = _SteppingClock(30.0)
    limit = BudgetLimit(name="minute", key="agent:*", usd=0.002, window="rolling:60s")
    ledger = BudgetLedger(MemoryStore(), [limit], clock=clock)
    filler = await ledger.reserve(["agent:busy"], usd=0.002, tokens=0)
    await ledger.commit(filler, usd=0.002, tokens=0)
    provider = _provider(server)
    try:
        with pytest.raises(BudgetExceeded, match="minute"):
            await _router(provider, ledger).acomplete(PROMPT, StepContext(agent_id="busy"))
    finally:
        await provider.aclose()
    assert server.requests == []  # `large` (5x the price) was not asked instead


async def test_a_cheaper_model_of_the_chain_may_still_take_a_refused_step(server: LocalOpenAIServer) -> None:
    # A token limit: `large` (chosen for a hard prompt) must reserve 400 output tokens and is refused;
    # `small` (a lower tier the chain may fall back to, and cheaper) caps its output at 50 and fits.
    registry = ModelRegistry([_spec("small", 1, 0.5, max_output_tokens=50), _spec("large", 2, 2.5)])
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="agent:*", tokens=300)])
    provider = _provider(server)
    request = ChatRequest(messages=(Message.user(HARD),), max_tokens=400)
    router = _router(provider, ledger, registry=registry, fallback_to_lower_tiers=True)
    try:
        assert router.decide(request).model == "large"
        answer = await router.acomplete(request, StepContext(agent_id="thrifty"))
    finally:
        await provider.aclose()
    assert answer.model_id == "small"
    assert [r.model for r in server.requests] == ["small"]


# -- parallel calls near the end of a limit -----------------------------------------------------


class _PlannedTogether:
    """A real store whose first `callers` readings of usage wait for one another, so that many
    parallel steps all plan against the same state of the budget before any of them reserves: the
    race of parallel calls, made certain. Everything else goes straight to the store."""

    def __init__(self, store: BudgetStore, callers: int) -> None:
        self.store = store
        self._waiting = callers
        self._all_read = asyncio.Event()

    @property
    def url(self) -> str:
        return self.store.url

    async def usage(self, queries: Sequence[UsageQuery], *, now: float) -> tuple[KeyUsage, ...]:
        read = await self.store.usage(queries, now=now)
        if self._waiting > 0:
            self._waiting -= 1
            if self._waiting == 0:
                self._all_read.set()
            await asyncio.wait_for(self._all_read.wait(), timeout=10)
        return read

    async def reserve(self, *args: Any, **kwargs: Any) -> ReserveResult:
        return await self.store.reserve(*args, **kwargs)

    async def commit(self, *args: Any, **kwargs: Any) -> None:
        await self.store.commit(*args, **kwargs)

    async def renew(self, reservation_id: str, *, now: float, expires_at: float) -> bool:
        return await self.store.renew(reservation_id, now=now, expires_at=expires_at)

    async def release(self, reservation_id: str) -> None:
        await self.store.release(reservation_id)

    async def keys(self) -> tuple[str, ...]:
        return await self.store.keys()

    async def reset(self, key: str) -> None:
        await self.store.reset(key)

    async def aclose(self) -> None:
        await self.store.aclose()


async def _two_at_once(
    store: BudgetStore, server: LocalOpenAIServer, limit: float, prompt: str
) -> tuple[list[RoutedResponse | BudgetExceeded], BudgetLedger]:
    """Two parallel calls without `max_tokens`, both planned before either reserves."""
    ledger = BudgetLedger(_PlannedTogether(store, 2), [BudgetLimit(name="cap", key="agent:*", usd=limit)])
    server.script("small", VERBOSE, VERBOSE)
    server.script("large", VERBOSE, VERBOSE)
    provider = _provider(server)
    try:
        outcomes = await _at_once(_router(provider, ledger), 2, prompt, "duo")
    finally:
        await provider.aclose()
    return outcomes, ledger


async def _at_once(
    router: Router, calls: int, prompt: str, agent: str
) -> list[RoutedResponse | BudgetExceeded]:
    """`calls` parallel calls of `prompt` without `max_tokens`: each one's answer, or its refusal."""

    async def call() -> RoutedResponse | BudgetExceeded:
        try:
            return await router.acomplete(
                ChatRequest(messages=(Message.user(prompt),)), StepContext(agent_id=agent)
            )
        except BudgetExceeded as refused:
            return refused

    return list(await asyncio.wait_for(asyncio.gather(*(call() for _ in range(calls))), timeout=60))


async def test_a_parallel_call_is_planned_again_with_a_smaller_cap_when_the_first_took_its_room(
    store: BudgetStore, server: LocalOpenAIServer
) -> None:
    # Both plan 512 output tokens on `small` (~$0.00103); once the first reserves that, $0.0016 leaves
    # ~$0.00057: a full hold no longer fits, but ~280 output tokens do. The second must get them.
    limit = 0.0016
    outcomes, ledger = await _two_at_once(store, server, limit, PROMPT)

    answers = [o for o in outcomes if isinstance(o, RoutedResponse)]
    assert len(answers) == 2, outcomes
    caps = sorted(r.body["max_tokens"] for r in server.requests)
    assert [r.model for r in server.requests] == ["small", "small"]
    assert USEFUL_OUTPUT_TOKENS <= caps[0] < caps[1] == DEFAULT_OUTPUT_TOKENS
    replanned = [a for a in answers if any("planned again" in r for r in a.decision.reasons)]
    assert len(replanned) == 1
    spent = await _spent_usd(ledger, "agent:duo")
    assert to_nano(spent) <= to_nano(limit)
    assert spent == pytest.approx(sum(a.cost_usd for a in answers))


async def test_a_parallel_call_is_planned_again_on_a_cheaper_model_when_its_own_no_longer_fits(
    server: LocalOpenAIServer,
) -> None:
    # Both plan HARD on `large` (~$0.0053 for 512 output tokens); after the first reserves that, the
    # $0.0075 limit leaves ~$0.0022: not `large`'s estimate, but a whole answer on `small`.
    limit = 0.0075
    outcomes, ledger = await _two_at_once(MemoryStore(), server, limit, HARD)

    answers = [o for o in outcomes if isinstance(o, RoutedResponse)]
    assert len(answers) == 2, outcomes
    assert sorted(a.model_id for a in answers) == ["large", "small"]
    cheaper = next(a for a in answers if a.model_id == "small")
    assert cheaper.decision.model == "small" and cheaper.decision.budget_changed
    assert to_nano(await _spent_usd(ledger, "agent:duo")) <= to_nano(limit)


async def test_a_parallel_call_is_still_refused_when_not_even_a_short_answer_fits_what_is_left(
    store: BudgetStore, server: LocalOpenAIServer
) -> None:
    # $0.00110 pays for one whole answer on `small` (~$0.00103); what it leaves ($0.00007) pays for
    # fewer than the 64 output tokens of a useful one on any model.
    limit = 0.0011
    outcomes, ledger = await _two_at_once(store, server, limit, PROMPT)

    assert sorted(type(o).__name__ for o in outcomes) == ["BudgetExceeded", "RoutedResponse"]
    assert len(server.requests) == 1
    assert to_nano(await _spent_usd(ledger, "agent:duo")) <= to_nano(limit)


SHORT = Reply(text="The capital of France is Paris.")


async def test_parallel_calls_held_off_by_each_others_reservations_are_served_in_turn(
    store: BudgetStore, server: LocalOpenAIServer
) -> None:
    # Each call reserves 64 to 512 output tokens and writes a handful. The limit pays for two answers
    # by real cost and then the worst case of a useful third (64 output tokens): served one after
    # another, three fit without risking it, whatever each writes. The first to reserve holds all the
    # budget affords; the others, refused only for what it holds, wait for it to settle.
    server.script("small", SHORT)
    provider = _provider(server)
    probe = await Router(REGISTRY, policy=SignalScorer(MARKERS), providers=[provider]).acomplete(PROMPT)
    useful = REGISTRY["small"].cost(Usage(probe.usage.input_tokens, USEFUL_OUTPUT_TOKENS))
    limit = 2.5 * probe.cost_usd + useful  # three answers one after another; never a fourth
    ledger = BudgetLedger(store, [BudgetLimit(name="cap", key="agent:*", usd=limit)])
    server.script("small", *[Delay(0.2, SHORT)] * 4)
    try:
        outcomes = await _at_once(_router(provider, ledger), 4, PROMPT, "quartet")
    finally:
        await provider.aclose()

    answers = [o for o in outcomes if isinstance(o, RoutedResponse)]
    (refused,) = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    assert len(answers) == 3, outcomes
    assert refused.spent + refused.requested > refused.limit  # refused by the spend, not a hold
    assert any("after waiting" in r for a in answers for r in a.decision.reasons)
    spent = await _spent_usd(ledger, "agent:quartet")
    assert to_nano(spent) <= to_nano(limit)
    assert spent == pytest.approx(sum(a.cost_usd for a in answers))


async def test_a_call_held_off_by_a_reservation_goes_ahead_as_soon_as_it_is_released(
    server: LocalOpenAIServer,
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="cap", key="agent:*", usd=0.002)])
    held = await ledger.reserve(["agent:patient"], usd=0.0019, tokens=0)  # another call's worst case
    provider = _provider(server)
    release = asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(ledger.release(held)))
    try:
        answer = await _router(provider, ledger).acomplete(PROMPT, StepContext(agent_id="patient"))
    finally:
        release.cancel()
        await provider.aclose()
    assert answer.model_id == "small" and len(server.requests) == 1
    assert server.requests[0].body["max_tokens"] == DEFAULT_OUTPUT_TOKENS  # planned against all that is free


@pytest.mark.parametrize("wait_seconds", [0.0, 0.6])
async def test_a_call_held_off_by_a_reservation_that_never_settles_is_refused_when_its_wait_runs_out(
    store: BudgetStore, server: LocalOpenAIServer, wait_seconds: float
) -> None:
    ledger = BudgetLedger(
        store, [BudgetLimit(name="cap", key="agent:*", usd=0.002)], wait_seconds=wait_seconds
    )
    await ledger.reserve(["agent:stuck"], usd=0.0019, tokens=0)  # a call that never ends
    provider = _provider(server)
    started = time.monotonic()
    try:
        with pytest.raises(BudgetExceeded, match="cap"):
            await _router(provider, ledger).acomplete(PROMPT, StepContext(agent_id="stuck"))
    finally:
        await provider.aclose()
    assert wait_seconds <= time.monotonic() - started < wait_seconds + 5
    assert server.requests == []


# -- every call is charged to some key ---------------------------------------------------------


async def test_calls_that_name_no_agent_are_charged_to_the_default_agent(server: LocalOpenAIServer) -> None:
    ledger = BudgetLedger(
        MemoryStore(), [BudgetLimit(name="everyone", key="*", usd=0.004)], default_agent="anon"
    )
    server.script("small", *[VERBOSE] * 50)
    provider = _provider(server)
    try:
        answers = await _until_refused(_router(provider, ledger), StepContext())
    finally:
        await provider.aclose()
    assert answers
    spent = await _spent_usd(ledger, "agent:anon")
    assert spent == pytest.approx(sum(a.cost_usd for a in answers)) and to_nano(spent) <= to_nano(0.004)


def test_the_benchmarks_no_max_tokens_run_keeps_its_verdicts() -> None:
    benchmark = Path(__file__).parents[2] / "benchmarks" / "budget_contention.py"
    args = [sys.executable, str(benchmark), "--no-max-tokens", "--store", "memory", "--json"]
    args += ["--limit", "0.02"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["overspend_usd"] == 0.0 and figures["lost_usd"] == 0.0
    assert figures["calls"] > 0 and figures["calls_cut_at_cap"] == figures["calls"]
    assert figures["refusals"] == figures["callers"] == CALLERS
