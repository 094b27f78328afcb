"""Several deployments of one model, on two local servers: a failing one is tripped, probed and brought
back; the faster one gets the traffic; `prefer = "latency"` moves a decision to the fastest model of its
tier and says so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearshift import (
    AllModelsFailed,
    CallerHints,
    ConfigError,
    Deployment,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    RoutedResponse,
    Router,
    RulesPolicy,
    SignalScorer,
    StepContext,
    load_config,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import OpenAIProvider
from gearshift.reporting import build_report, iter_log
from gearshift.routing._decision_log import open_decision_log
from gearshift.routing._deployments import PROBE_REQUEST, DeploymentHealth
from gearshift.signals._tokens import estimate_request_tokens
from gearshift.testing import Delay, Fail, LocalOpenAIServer, Reply


class Clock:
    """Real time plus a jump the test makes, so latencies are measured and breakers need no sleeping."""

    def __init__(self) -> None:
        self.jump = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.jump


@pytest.fixture
def east() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "other")) as server:
        yield server


@pytest.fixture
def west() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small-west",)) as server:
        yield server


def _spec(
    model_id: str = "small", provider: str = "east", model: str = "small", **extra: object
) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "id": model_id,
            "provider": provider,
            "model": model,
            "tier": 1,
            "prices": ModelPrices(input=1.0, output=2.0),
            **extra,
        }
    )


def _providers(east: LocalOpenAIServer, west: LocalOpenAIServer) -> list[OpenAIProvider]:
    return [
        OpenAIProvider("east", base_url=east.base_url, require_key=False, timeout=10.0),
        OpenAIProvider("west", base_url=west.base_url, require_key=False, timeout=10.0),
    ]


def _two_deployments(east: LocalOpenAIServer, west: LocalOpenAIServer) -> tuple[ModelSpec, Router]:
    spec = _spec(deployments=[Deployment(provider="west", model="small-west")])
    return spec, Router(ModelRegistry([spec]), policy=SignalScorer(), providers=_providers(east, west))


def _quick_breaker(
    east: LocalOpenAIServer, west: LocalOpenAIServer, clock: Clock, budgets: BudgetLedger | None = None
) -> Router:
    """East and west deployments of one model, tripped by one failure for 5 s."""
    spec = _spec(deployments=[Deployment(provider="west", model="small-west")])
    return Router(
        ModelRegistry([spec]),
        policy=SignalScorer(),
        providers=_providers(east, west),
        deployments=DeploymentHealth(failures=1, open_seconds=5.0),
        budgets=budgets,
        clock=clock,
    )


def _latencies(router: Router, spec: ModelSpec, *, streamed: bool = False) -> list[float]:
    """Each deployment's latency EWMA in ms, of unstreamed calls or to a stream's first event; every
    one must have been measured."""
    states = router.deployments.state(spec, time.monotonic())
    measured = [s.first_token_ms if streamed else s.answer_ms for s in states]
    assert all(ms is not None for ms in measured), measured
    return [ms for ms in measured if ms is not None]


async def _streamed(router: Router, prompt: str) -> RoutedResponse:
    """`prompt` streamed to its end: the routed answer."""
    stream = router.astream(prompt)
    async for _ in stream:
        pass
    assert stream.result is not None
    return stream.result


def _wire(server: LocalOpenAIServer) -> list[int | None]:
    """The max_tokens of every chat request the server received (1: a probe)."""
    return [r.body.get("max_tokens") for r in server.requests if r.path.endswith("/chat/completions")]


async def test_a_failing_deployment_is_tripped_probed_and_brought_back(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    spec = _spec(deployments=[Deployment(provider="west", model="small-west")])
    health = DeploymentHealth(failures=2, open_seconds=10.0)
    router = Router(
        ModelRegistry([spec]),
        policy=SignalScorer(),
        providers=_providers(east, west),
        deployments=health,
        clock=clock,
    )
    async with router:
        east.script("small", Fail(503), Fail(503))
        # Both failures fall over to the west deployment within the call: the caller sees answers.
        for _ in range(2):
            answer = await router.acomplete("hello")
            assert [(a.provider, a.ok) for a in answer.attempts][-1] == ("west", True)
            assert answer.model_id == "small"
        assert [s.state for s in health.state(spec, clock())] == ["open", "closed"]
        assert router.cooldowns.cooling("small", clock()) == 0.0  # the model is still served

        seen = len(_wire(east))
        answer = await router.acomplete("while east is tripped")
        assert [a.provider for a in answer.attempts] == ["west"]
        assert len(_wire(east)) == seen  # a tripped deployment gets no traffic

        clock.jump += 11.0  # the breaker's open period is over: east must answer a probe first
        east.script("small", Fail(503))
        answer = await router.acomplete("east is probed and still down")
        assert _wire(east)[seen:] == [1]
        assert [(a.provider, a.ok) for a in answer.attempts] == [("east", False), ("west", True)]
        assert [s.state for s in health.state(spec, clock())] == ["open", "closed"]

        clock.jump += 15.0  # less than the doubled open period: still skipped
        await router.acomplete("still tripped")
        assert _wire(east)[seen:] == [1]

        clock.jump += 10.0  # past 20 s: probed again, and this time east answers
        answer = await router.acomplete("east is back")
        assert _wire(east)[seen + 1] == 1
        assert answer.attempts[0].provider == "east" and answer.attempts[0].ok  # the probe, billed
        assert [s.state for s in health.state(spec, clock())] == ["closed", "closed"]


async def test_the_faster_deployment_gets_the_traffic(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    spec, router = _two_deployments(east, west)
    async with router:
        east.script("small", *[Delay(0.15)] * 10)
        for n in range(4):  # each deployment warms up, then is measured: one never measured goes first
            await router.acomplete(f"measure {n}")
        served = [(await router.acomplete(f"call {n}")).attempts[0].provider for n in range(4)]
    assert served == ["west"] * 4
    east_ms, west_ms = _latencies(router, spec)
    assert east_ms > west_ms + 100


async def test_a_deployments_warm_up_call_does_not_rank_it_last_for_good(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    spec, router = _two_deployments(east, west)
    async with router:
        # East's first call pays a one-time cost (in a real process: the SDK's import, its client,
        # the connection); after it, east answers at once while west takes 0.1 s a call.
        east.script("small", Delay(0.4))
        west.script("small-west", *[Delay(0.1)] * 10)
        for n in range(4):  # each deployment warms up, then is measured
            await router.acomplete(f"measure {n}")
        served = [(await router.acomplete(f"call {n}")).attempts[0].provider for n in range(4)]
    assert served == ["east"] * 4
    east_ms, west_ms = _latencies(router, spec)
    assert east_ms < 100 <= west_ms


async def test_a_stream_measures_the_time_to_its_first_event(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    spec, router = _two_deployments(east, west)
    async with router:
        west.script("small-west", Delay(0.2), Delay(0.2))
        for n in range(4):  # each deployment warms up, then is measured
            await _streamed(router, f"stream {n}")
    east_ms, west_ms = _latencies(router, spec, streamed=True)
    assert west_ms >= 200  # the scripted delay is measured, to the first event
    assert west_ms > east_ms  # relative, not timed: a loaded machine slows both


async def test_streams_are_ranked_by_time_to_first_token_not_by_unstreamed_answers_whole_time(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    spec, router = _two_deployments(east, west)
    async with router:
        # East serves two long unstreamed answers (0.3 s each, all of it generating); west streams,
        # its first token after 0.1 s. East's first token comes at once: it is the faster to stream.
        east.script("small", Delay(0.3), Delay(0.3))
        west.script("small-west", *[Delay(0.1)] * 12)
        for n in range(2):
            await router.acomplete(f"a long answer {n}")
        served = [(await _streamed(router, f"stream {n}")).attempts[0].provider for n in range(6)]
    # East's whole answers say nothing of its first token: east is measured streaming (at once, it is
    # warm), then west (warm-up, then measured); from then on the faster first token takes the streams.
    assert served == ["east", "west", "west", "east", "east", "east"]
    (east_state, west_state) = router.deployments.state(spec, time.monotonic())
    assert east_state.first_token_ms is not None and west_state.first_token_ms is not None
    assert east_state.first_token_ms < west_state.first_token_ms
    assert east_state.answer_ms is not None and east_state.answer_ms >= 300
    assert west_state.answer_ms is None  # west never answered unstreamed


async def test_prefer_latency_moves_to_the_fastest_model_of_the_tier(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    cheap = _spec("cheap", "east", "small")
    fast = ModelSpec(
        id="fast", provider="west", model="small-west", tier=1, prices=ModelPrices(input=2, output=4)
    )
    registry = ModelRegistry([cheap, fast])
    router = Router(registry, policy=SignalScorer(), providers=_providers(east, west), prefer="latency")
    async with router:
        assert router.decide("hi").model == "cheap"  # nothing measured yet: the cheapest
        east.script("small", Delay(0.15), Delay(0.15))
        for model in ("cheap", "cheap", "fast", "fast"):  # each model warms up, then is measured
            await router.acomplete("hi", StepContext(hints=CallerHints(force_model=model)))
        decision = router.decide("hi")
    assert decision.model == "fast"
    assert decision.fallbacks[0] == "cheap"
    assert any(r.startswith("prefer = latency: fast answers fastest in tier 1") for r in decision.reasons)
    cost_router = Router(registry, policy=SignalScorer(), providers=_providers(east, west))
    cost_router.deployments = router.deployments
    assert cost_router.decide("hi").model == "cheap"  # prefer = cost ignores latency

    # A rule that names a dearer, slower model of the tier is obeyed: only a choice of tier gives
    # way to latency.
    pricey = ModelSpec(
        id="pricey", provider="east", model="other", tier=1, prices=ModelPrices(input=5, output=9)
    )
    named_registry = ModelRegistry([cheap, fast, pricey])
    rule = RulesPolicy.from_config([{"model": "pricey"}], fallback=SignalScorer(), registry=named_registry)
    named = Router(named_registry, policy=rule, providers=_providers(east, west), prefer="latency")
    named.deployments = router.deployments
    named.deployments.on_success(pricey, answer_ms=150.0)  # measured slower than `fast`
    assert named.decide("hi").model == "pricey"


def _latency_router(east: LocalOpenAIServer, west: LocalOpenAIServer, peer: str) -> Router:
    """`prefer = "latency"` over two models of tier 1: `cheap` on east, and `peer`, dearer, on west."""
    cheap = _spec("cheap", "east", "small")
    dearer = ModelSpec(
        id=peer, provider="west", model="small-west", tier=1, prices=ModelPrices(input=2, output=4)
    )
    return Router(
        ModelRegistry([cheap, dearer]),
        policy=SignalScorer(),
        providers=_providers(east, west),
        prefer="latency",
    )


async def test_prefer_latency_measures_each_model_of_the_tier_and_moves_to_the_fastest(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    # Nothing forces a call to `fast`: a model of the tier not measured yet takes calls until it is,
    # or it would never be, and `prefer = "latency"` would keep the cheapest for good.
    router = _latency_router(east, west, "fast")
    async with router:
        east.script("small", *[Delay(0.15)] * 10)
        served = [(await router.acomplete(f"call {n}")).model_id for n in range(7)]
        decision = router.decide("hi")
    # cheap warms up and is measured; fast is tried (warm-up, measured); then the faster one stays.
    assert served == ["cheap", "cheap", "fast", "fast", "fast", "fast", "fast"]
    assert decision.model == "fast"
    assert any(r.startswith("prefer = latency: fast answers fastest in tier 1") for r in decision.reasons)


async def test_prefer_latency_does_not_try_a_model_of_the_tier_that_failed(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    router = _latency_router(east, west, "down")
    async with router:
        west.script("small-west", Fail(503))
        with pytest.raises(AllModelsFailed):
            await router.acomplete("down fails", StepContext(hints=CallerHints(force_model="down")))
        served = [(await router.acomplete(f"call {n}")).model_id for n in range(4)]
    assert served == ["cheap"] * 4
    assert _wire(west) == [None]  # never sent a call to be measured after its failure


def test_deployments_and_prefer_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "gearshift.toml"
    path.write_text(
        """
[providers.east]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
require_key = false

[providers.west]
kind = "openai"
base_url = "http://127.0.0.1:10/v1"
require_key = false

[routing]
prefer = "latency"
breaker_failures = 5
breaker_open_seconds = 12

[[models]]
id = "small"
provider = "east"
model = "small"
tier = 1
prices = { input = 1, output = 2 }
deployments = [{ provider = "west", model = "small-west" }]
"""
    )
    router = Router.from_config(path)
    assert router.prefer == "latency"
    assert (router.deployments.failures, router.deployments.open_seconds) == (5, 12.0)
    assert router.registry["small"].deployments == (Deployment(provider="west", model="small-west"),)

    path.write_text(path.read_text().replace('provider = "west", model', 'provider = "north", model'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "models[0].deployments[0].provider"
    assert "provider 'north' is not declared" in str(caught.value)
    path.write_text(path.read_text().replace('prefer = "latency"', 'prefer = "speed"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "routing.prefer"


def test_a_deployment_on_a_provider_that_already_serves_the_model_is_refused(tmp_path: Path) -> None:
    # One provider configuration is one place: listed twice, it was one deployment tried twice in a
    # call, its failures counted twice, under one health record (`small@east`).
    with pytest.raises(
        ValueError, match=r"provider 'east' already serves model 'small' \(its own provider\)"
    ):
        _spec(deployments=[Deployment(provider="east")])
    with pytest.raises(
        ValueError, match=r"provider 'west' already serves model 'small' \(deployments\[0\]\)"
    ):
        _spec(deployments=[Deployment(provider="west"), Deployment(provider="west", model="other")])
    path = tmp_path / "gearshift.toml"
    path.write_text(
        """
[providers.east]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
require_key = false

[[models]]
id = "small"
provider = "east"
model = "small"
tier = 1
prices = { input = 1, output = 2 }
deployments = [{ provider = "east", model = "small-2" }]
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "models[0].deployments"
    assert "declare another provider, even with the same base_url" in str(caught.value)


async def test_a_probe_is_charged_to_the_budget_like_any_call(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=10.0)])
    router = _quick_breaker(east, west, clock, budgets=ledger)
    run = StepContext(run_id="r1")
    async with router:
        east.script("small", Fail(503))
        first = await router.acomplete("trip east", run)
        clock.jump += 6.0
        answer = await router.acomplete("probe east", run)
        status = await ledger.status(["run:r1"])
    probe = answer.attempts[0]
    assert (probe.provider, probe.ok, probe.usage.output_tokens) == ("east", True, 1)
    assert probe.cost_usd > 0
    assert len(answer.attempts) == 2 and answer.attempts[-1].ok  # the probe, then the answer
    assert status.limits[0].spent_usd == pytest.approx(first.cost_usd + answer.cost_usd)
    assert answer.cost_usd == pytest.approx(probe.cost_usd + answer.attempts[-1].cost_usd)
    assert status.limits[0].reserved_usd == 0


async def _east_tripped_then_slow(
    east: LocalOpenAIServer, west: LocalOpenAIServer, probe_delay: float
) -> tuple[Router, float]:
    """`_quick_breaker` under a run budget with a 1 s timeout on east; east tripped by a 503
    and its probe due, which east will answer after `probe_delay` s. Returns the tripping call's cost."""
    spec = _spec(deployments=[Deployment(provider="west", model="small-west")])
    clock = Clock()
    router = Router(
        ModelRegistry([spec]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider("east", base_url=east.base_url, require_key=False, timeout=1.0),
            OpenAIProvider("west", base_url=west.base_url, require_key=False, timeout=10.0),
        ],
        deployments=DeploymentHealth(failures=1, open_seconds=5.0),
        budgets=BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=10.0)]),
        clock=clock,
    )
    east.script("small", Fail(503), Delay(probe_delay))
    first = await router.acomplete("trip east", StepContext(run_id="r1"))
    clock.jump += 6.0
    return router, first.cost_usd


async def test_a_probe_that_times_out_is_charged_its_input_as_a_routed_call_is(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    router, tripping = await _east_tripped_then_slow(east, west, probe_delay=2.5)
    async with router:
        answer = await router.acomplete("probe east, which is too slow", StepContext(run_id="r1"))
        assert router.budgets is not None
        (spent,) = await router.budgets.usage(["run:r1"])
    probe = answer.attempts[0]
    assert (probe.provider, probe.ok) == ("east", False)
    assert probe.error is not None and probe.error.kind == "timeout"
    assert _wire(east)[1:] == [1]  # the provider took the probe
    tokens = estimate_request_tokens(PROBE_REQUEST)
    assert probe.usage_estimated and (probe.usage.input_tokens, probe.usage.output_tokens) == (tokens, 0)
    assert probe.cost_usd > 0 and answer.attempts[-1].ok
    assert spent.spent_usd == pytest.approx(tripping + answer.cost_usd) and spent.reserved_usd == 0


async def test_a_probe_cancelled_in_flight_is_charged_its_input_and_holds_nothing(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    router, tripping = await _east_tripped_then_slow(east, west, probe_delay=5.0)
    async with router:
        call = asyncio.create_task(router.acomplete("probe east, then give up", StepContext(run_id="r1")))
        for _ in range(500):
            if len(_wire(east)) == 2:  # the probe reached east
                break
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert router.budgets is not None
        (spent,) = await router.budgets.usage(["run:r1"])
    probe_cost = ModelPrices(input=1.0, output=2.0).input * estimate_request_tokens(PROBE_REQUEST) / 1e6
    assert spent.reserved_usd == 0  # the probe's reservation was settled, not left to the heartbeat
    assert spent.spent_usd == pytest.approx(tripping + probe_cost)


async def test_when_every_deployment_fails_its_probe_the_call_fails_with_every_error(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    router = _quick_breaker(east, west, clock)
    async with router:
        east.script("small", *[Fail(503)] * 3)
        west.script("small-west", *[Fail(503)] * 3)
        with pytest.raises(AllModelsFailed):
            await router.acomplete("both down")
        clock.jump += 6.0
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("both probed, both still down")
    # Both probes failed; with nothing healthy left, both were still tried for real.
    assert len(caught.value.exceptions) == 2
    assert _wire(east) == [None, 1, None] and _wire(west) == [None, 1, None]


async def test_calls_in_flight_when_a_deployment_trips_do_not_lengthen_its_open_period(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    router = _quick_breaker(east, west, clock)
    async with router:
        # Five calls set out for east at once (neither deployment measured: east goes first); the
        # first failure trips it for 5 s, the other four were already on their way.
        east.script("small", *[Fail(503)] * 5)
        answers = await asyncio.gather(*(router.acomplete(f"call {n}") for n in range(5)))
        assert [a.attempts[-1].provider for a in answers] == ["west"] * 5
        assert _wire(east) == [None] * 5
        clock.jump += 6.0  # past the one trip's 5 s, not past a period doubled by each late failure
        answer = await router.acomplete("east is due its probe")
    assert _wire(east)[5:] == [1]
    assert answer.attempts[0].provider == "east" and answer.attempts[0].ok


async def test_parallel_callers_send_a_tripped_deployment_one_probe(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    router = _quick_breaker(east, west, clock)
    async with router:
        east.script("small", Fail(503), Delay(0.3))
        await router.acomplete("trip east")
        clock.jump += 6.0
        answers = await asyncio.gather(*(router.acomplete(f"call {n}") for n in range(10)))
    assert _wire(east)[1:].count(1) == 1  # one probe, not one per caller
    assert all(a.attempts[-1].ok for a in answers)
    probed = [a for a in answers if a.attempts[0].provider == "east"]
    assert len(probed) == 1 and probed[0].attempts[0].usage.output_tokens == 1


async def test_while_every_deployment_is_tripped_parallel_callers_wait_for_the_probe(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    router = _quick_breaker(east, west, clock)
    async with router:
        east.script("small", Fail(503), Delay(0.5))
        west.script("small-west", Fail(503))
        with pytest.raises(AllModelsFailed):
            await router.acomplete("trip both")
        clock.jump += 6.0  # both are due a probe; east takes 0.5 s to answer its own

        async def call(n: int) -> tuple[RoutedResponse, float]:
            answer = await router.acomplete(f"call {n}")
            return answer, time.monotonic()

        started = time.monotonic()
        answers = await asyncio.gather(*(call(n) for n in range(10)))
    (probed,) = [(a, t) for a, t in answers if a.attempts[0].probe]
    probe_answered = started + probed[0].attempts[0].latency_ms / 1000
    # Half-open: one probe each, and no real call reaches a tripped deployment before its probe
    # answered (the others waited for it, then were served by the deployment it closed).
    assert _wire(east)[1:].count(1) == 1 and _wire(west)[1:].count(1) <= 1
    others = [(a, t) for a, t in answers if not a.attempts[0].probe]
    assert all(t >= probe_answered for _, t in others)
    assert all(a.attempts[-1].ok for a, _ in answers)


async def test_a_probe_the_deployment_refuses_as_a_bad_request_is_a_failed_probe(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    # A 400 is the caller's fault and trips nothing; but the probe is gearshift's own 'ping': refused,
    # it left the deployment due, and every call after it paid one more probe before its answer.
    clock = Clock()
    router = _quick_breaker(east, west, clock)
    spec = router.registry["small"]
    async with router:
        east.script("small", Fail(503), *[Fail(400)] * 3)
        await router.acomplete("trip east")
        clock.jump += 6.0
        for n in range(3):
            answer = await router.acomplete(f"call {n}")
            assert answer.attempts[-1].provider == "west"
        assert _wire(east) == [None, 1]  # one probe, refused: east is tripped again, not probed per call
        assert [s.state for s in router.deployments.state(spec, clock())] == ["open", "closed"]


async def test_a_rate_limited_deployment_is_skipped_for_its_retry_after(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    clock = Clock()
    spec, router = _two_deployments(east, west)  # trips after 3 failures in a row
    router.clock = clock
    async with router:
        east.script("small", Fail(429, retry_after=20))
        answer = await router.acomplete("east is rate limited")
        assert [(a.provider, a.ok) for a in answer.attempts] == [("east", False), ("west", True)]
        assert [s.state for s in router.deployments.state(spec, clock())] == ["open", "closed"]
        for n in range(3):
            answer = await router.acomplete(f"within the retry-after {n}")
            assert [a.provider for a in answer.attempts] == ["west"]
        assert _wire(east) == [None]
        clock.jump += 21.0  # the provider's retry-after is over: east is probed, then takes traffic
        answer = await router.acomplete("east is back")
    assert _wire(east)[1] == 1
    assert answer.attempts[0].provider == "east" and answer.attempts[0].ok


async def test_when_every_deployment_fails_the_error_names_each_one(
    east: LocalOpenAIServer, west: LocalOpenAIServer
) -> None:
    spec = _spec(deployments=[Deployment(provider="west", model="small-west")])
    router = Router(
        ModelRegistry([spec]),
        policy=SignalScorer(),
        providers=[
            OpenAIProvider("east", base_url=east.base_url, api_key="sk-east-secret-0123456789"),
            OpenAIProvider("west", base_url=west.base_url, api_key="sk-west-secret-0123456789"),
        ],
    )
    async with router:
        east.script("small", Fail(503))
        west.script("small-west", Fail(429))
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("both down")
    message = str(caught.value)
    assert "server (HTTP 503): small@east" in message
    assert "rate_limit (HTTP 429): small@west" in message
    assert "secret" not in message
    assert message.startswith("all 2 attempts (1 model) tried for this request failed")


async def test_the_decision_log_tells_a_probe_from_an_answer(
    east: LocalOpenAIServer, west: LocalOpenAIServer, tmp_path: Path
) -> None:
    clock = Clock()
    router = _quick_breaker(east, west, clock)
    router.decision_log = open_decision_log(tmp_path / "log.jsonl")
    async with router:
        east.script("small", Fail(503), Reply(text="pong"), Fail(503))
        await router.acomplete("trip east")  # west answers
        clock.jump += 6.0
        west.script("small-west", Fail(503))
        with pytest.raises(AllModelsFailed):  # east answers its probe, then both fail the call
            await router.acomplete("east probed, then both down")
    router.decision_log.close()
    records = list(iter_log(tmp_path / "log.jsonl"))
    attempts = [(r["provider"], r["ok"], r["probe"]) for r in records if r["kind"] == "attempt"]
    assert attempts[:3] == [("east", False, False), ("west", True, False), ("east", True, True)]
    assert sorted(attempts[3:]) == [("east", False, False), ("west", False, False)]
    report = build_report(records)
    assert (report["requests"], report["answered"], report["failed"]) == (2, 1, 1)
