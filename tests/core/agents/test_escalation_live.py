"""The learned escalation in a live router: on every step of a run, sticky per run, from Python or TOML.

An agent loop drives `Router.acomplete` on the local server (`small` tier 1, `large` tier 2, the real
`openai` SDK): the scripted small model calls a failing tool with the same arguments until the
learned escalation (the artifact `tests/artifacts/make_escalation.py` trains with the offline code)
hands the run up; the run then stays on the large model, and the ledger holds what the attempts cost.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gearshift import (
    ChatRequest,
    ConfigError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    StepContext,
    ToolRecord,
    ToolSpec,
    context_from_messages,
    hash_arguments,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.escalation import (
    FEATURE_NAMES,
    CheapestPolicy,
    EscalationConfig,
    EscalationModel,
    LiveEscalation,
)
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARTIFACT = ARTIFACTS / "escalation.json"
KEY = "sk-local-openai-7f3a9c"  # the key the openai_server fixture requires
SEARCH = ToolSpec(
    name="search",
    description="Search the order system.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}},
)
TASK = "Find order 7 and say when it ships."
FAILING = {"query": "order 7"}


REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small", provider="openai", model="small", tier=1, prices=ModelPrices(input=0.15, output=0.6)
        ),
        ModelSpec(
            id="large", provider="openai", model="large", tier=2, prices=ModelPrices(input=2.5, output=10)
        ),
    ]
)
"""The two models of the core tests' `openai_server`, reached through its `openai_provider`."""


@pytest.fixture(scope="module")
def model() -> EscalationModel:
    return EscalationModel.load(ARTIFACT)


def _search(query: str) -> tuple[str, bool]:
    """The order system: down for order 7, fine otherwise."""
    if query == "order 7":
        return "Error: the order service timed out", True
    return f"{query}: ships tomorrow", False


async def _run_agent(router: Router, run_id: str, steps: int) -> list[Any]:
    """An agent loop over `router`: each step's context is read from the conversation so far."""
    messages = [Message.system("You are a shop agent."), Message.user(TASK)]
    results = []
    for _ in range(steps):
        context = context_from_messages(messages, has_tools=True, agent_id="shop", run_id=run_id)
        result = await router.acomplete(ChatRequest(messages=tuple(messages), tools=(SEARCH,)), context)
        results.append(result)
        messages.append(result.response.message)
        for call in result.response.tool_calls:
            content, failed = _search(json.loads(call.arguments)["query"])
            messages.append(Message.tool(call.id, content, name=call.name, is_error=failed))
    return results


def _script(server: LocalOpenAIServer) -> None:
    # Three identical failing calls on the small model; the large one searches differently twice.
    server.script("small", *[Reply(tool_calls=[("search", FAILING)])] * 3)
    server.script(
        "large",
        Reply(tool_calls=[("search", {"query": "order 7 status"})]),
        Reply(tool_calls=[("search", {"query": "order 7 shipping"})]),
    )


def test_the_shipped_artifact_is_what_its_script_trains(model: EscalationModel) -> None:
    spec = importlib.util.spec_from_file_location("make_escalation", ARTIFACTS / "make_escalation.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    trained = script.train()
    assert (trained.threshold, trained.target) == (pytest.approx(model.threshold), model.target)
    probe = np.random.default_rng(0).uniform(0, 2, size=(20, len(FEATURE_NAMES)))
    assert trained.risks(probe) == pytest.approx(model.risks(probe))


async def test_a_failing_run_moves_up_and_stays_up_and_the_ledger_adds_up(
    openai_server: LocalOpenAIServer, openai_provider: OpenAIProvider, model: EscalationModel
) -> None:
    ledger = BudgetLedger(MemoryStore(), [BudgetLimit(key="run:*", usd=5.0)])
    router = Router(
        REGISTRY, policy=CheapestPolicy(), providers=[openai_provider], budgets=ledger, escalation=model
    )
    _script(openai_server)

    results = await _run_agent(router, "order-7", steps=5)

    assert [r.model_id for r in results] == ["small", "small", "small", "large", "large"]
    assert openai_server.pending("small") == openai_server.pending("large") == 0
    handover = results[3].decision
    risk = handover.scores["escalation_risk"]
    assert risk > model.threshold
    assert handover.reasons[0] == (
        f"3 tool errors in a row and the same call 3 times: predicted failure {risk:.2f} > "
        f"{model.threshold:.2f}"
    )
    assert handover.reasons[1] == "hand the step up to tier 2 (large) instead of small"
    assert all("no hand-over" in r.decision.reasons[-1] for r in results[:3])
    # Step 5 reads a successful result: the run stays up because it was handed up, and says so.
    held = results[4].decision
    assert (
        held.reasons[0]
        == f"run 'order-7' was handed up to tier 2 at step 4 ({handover.reasons[0]}); it stays there"
    )
    assert router.escalation is not None and router.escalation.runs_held == 1

    (status,) = (await ledger.status(["run:order-7"])).limits
    assert status.spent_usd == pytest.approx(sum(r.cost_usd for r in results), rel=1e-9)
    assert status.spent_usd == pytest.approx(sum(a.cost_usd for r in results for a in r.attempts), rel=1e-9)
    assert status.reserved_usd == 0
    await router.aclose()


async def test_without_stickiness_the_run_goes_back_down_once_the_risk_falls(
    openai_server: LocalOpenAIServer, openai_provider: OpenAIProvider, model: EscalationModel
) -> None:
    router = Router(
        REGISTRY,
        policy=CheapestPolicy(),
        providers=[openai_provider],
        escalation=LiveEscalation(model, sticky=False),
    )
    _script(openai_server)
    openai_server.script("small", Reply(text="Order 7 ships tomorrow."))

    results = await _run_agent(router, "order-7", steps=5)

    assert [r.model_id for r in results] == ["small", "small", "small", "large", "small"]
    assert results[4].decision.scores["escalation_risk"] <= model.threshold
    assert openai_server.pending("small") == 0
    assert openai_server.pending("large") == 1  # its second reply was never asked for


def _write_config(tmp_path: Path, server: LocalOpenAIServer, escalation: str) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "escalation.json").write_bytes(ARTIFACT.read_bytes())
    path = tmp_path / "gearshift.toml"
    path.write_text(
        f"""
[providers.local]
kind = "openai"
base_url = "{server.base_url}"
api_key_env = "GS_ESCALATION_TEST_KEY"

[[models]]
id = "small"
provider = "local"
model = "small"
tier = 1
prices = {{ input = 0.15, output = 0.6 }}

[[models]]
id = "large"
provider = "local"
model = "large"
tier = 2
prices = {{ input = 2.5, output = 10 }}

[routing]
policy = "cheapest"

{escalation}
""",
        encoding="utf-8",
    )
    return path


async def test_routing_escalation_in_gearshift_toml_routes_the_run_the_same_way(
    openai_server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GS_ESCALATION_TEST_KEY", KEY)
    path = _write_config(tmp_path, openai_server, '[routing.escalation]\npath = "models/escalation.json"')
    _script(openai_server)
    async with Router.from_config(path) as router:
        assert isinstance(router.escalation, LiveEscalation) and router.escalation.sticky
        results = await _run_agent(router, "order-7", steps=5)
    assert [r.model_id for r in results] == ["small", "small", "small", "large", "large"]


def test_the_threshold_and_stickiness_can_be_set_in_the_config(
    openai_server: LocalOpenAIServer, tmp_path: Path, model: EscalationModel
) -> None:
    path = _write_config(
        tmp_path,
        openai_server,
        '[routing.escalation]\npath = "models/escalation.json"\nthreshold = 0.5\nsticky = false',
    )
    router = Router.from_config(path)
    assert router.escalation is not None and not router.escalation.sticky
    assert router.escalation.model.threshold == 0.5
    # One failing call: above 0.5 but below the artifact's own threshold.
    history = (ToolRecord("search", False, hash_arguments(FAILING)),)
    context = StepContext(run_id="r", step_index=1, tool_history=history)
    decision = router.decide(TASK, context)
    assert decision.model == "large"
    assert model.threshold > decision.scores["escalation_risk"] > 0.5


def test_a_calibration_target_picks_a_threshold_from_the_artifacts_curve(model: EscalationModel) -> None:
    settings = EscalationConfig(path="x", target_handover_share=1.0)
    assert settings.operating_model(model).threshold < model.threshold
    strict = EscalationConfig(path="x", success_floor=1.0).operating_model(model)
    chosen = next(p for p in model.curve if p[0] == strict.threshold)
    assert chosen[2] == max(p[2] for p in model.curve)  # keeps always-strong's success on training
    assert "success floor 100%" in strict.target


async def test_adecide_remembers_a_handover_only_when_asked(
    openai_provider: OpenAIProvider, model: EscalationModel
) -> None:
    router = Router(REGISTRY, policy=CheapestPolicy(), providers=[openai_provider], escalation=model)
    history = (ToolRecord("search", False, hash_arguments(FAILING)),) * 3
    failing = StepContext(run_id="r1", step_index=3, tool_history=history)
    calm = StepContext(run_id="r1", step_index=4)
    assert (await router.adecide(TASK, failing)).model == "large"
    assert router.decide(TASK, failing).model == "large"
    assert (await router.adecide(TASK, calm)).model == "small"  # nothing was remembered
    assert (await router.adecide(TASK, failing, remember=True)).model == "large"
    later = await router.adecide(TASK, calm)
    assert later.model == "large" and "it stays there" in later.reasons[0]
    # Another run is not held, and a run without an id never is.
    assert router.decide(TASK, StepContext(run_id="r2", step_index=4)).model == "small"
    await router.adecide(TASK, StepContext(step_index=3, tool_history=history), remember=True)
    assert router.escalation is not None and router.escalation.runs_held == 1


async def test_the_floors_kept_in_memory_are_bounded(
    openai_provider: OpenAIProvider, model: EscalationModel
) -> None:
    live = LiveEscalation(model, max_runs=2)
    router = Router(REGISTRY, policy=CheapestPolicy(), providers=[openai_provider], escalation=live)
    history = (ToolRecord("search", False, hash_arguments(FAILING)),) * 3
    for run in ("a", "b", "c"):
        context = StepContext(run_id=run, step_index=3, tool_history=history)
        assert (await router.adecide(TASK, context, remember=True)).model == "large"
    assert live.floor("b") is not None  # b is now the most recently used
    await router.adecide(TASK, StepContext(run_id="d", step_index=3, tool_history=history), remember=True)
    assert live.runs_held == 2
    assert [live.floor(run) is not None for run in "abcd"] == [False, True, False, True]
    live.forget("b")
    assert live.runs_held == 1


@pytest.mark.parametrize(
    ("table", "key", "says"),
    [
        ("threshold = 0.5", "routing.escalation.path", "is required"),
        ('path = "missing.json"', "routing.escalation.path", "missing.json' does not exist; train one"),
        (
            'path = "models/escalation.json"\nthreshold = 1.5',
            "routing.escalation.threshold",
            "must be <= 1, got 1.5",
        ),
        (
            'path = "models/escalation.json"\nstiky = false',
            "routing.escalation.stiky",
            "the escalation accepts: path",
        ),
        (
            'path = "models/escalation.json"\nthreshold = 0.5\nsuccess_floor = 0.9',
            "routing.escalation",
            "set at most one of threshold, success_floor, target_handover_share",
        ),
        (
            'path = "models/escalation.json"\nmax_runs = 0',
            "routing.escalation.max_runs",
            "must be > 0, got 0",
        ),
        (
            'path = "models/escalation.json"\nsticky = "yes please"',
            "routing.escalation.sticky",
            'must be true or false, got "yes please"',
        ),
    ],
)
def test_bad_escalation_settings_name_the_file_and_the_key(
    openai_server: LocalOpenAIServer, tmp_path: Path, table: str, key: str, says: str
) -> None:
    path = _write_config(tmp_path, openai_server, f"[routing.escalation]\n{table}")
    with pytest.raises(ConfigError) as caught:
        Router.from_config(path)
    assert caught.value.key == key
    assert str(path) in str(caught.value) and says in str(caught.value)


def test_an_artifact_of_another_kind_is_refused_naming_the_file(
    openai_server: LocalOpenAIServer, tmp_path: Path
) -> None:
    path = _write_config(tmp_path, openai_server, '[routing.escalation]\npath = "models/escalation.json"')
    (tmp_path / "models" / "escalation.json").write_text('{"format": "gearshift.learned-router"}')
    with pytest.raises(ConfigError, match=r"escalation\.json"):
        Router.from_config(path)


async def test_on_a_longer_ladder_a_held_run_still_moves_up_one_tier_at_a_time(
    openai_provider: OpenAIProvider, model: EscalationModel
) -> None:
    ladder = ModelRegistry(
        [
            *REGISTRY,
            ModelSpec(
                id="top", provider="openai", model="large", tier=3, prices=ModelPrices(input=10, output=40)
            ),
        ]
    )
    router = Router(ladder, policy=CheapestPolicy(), providers=[openai_provider], escalation=model)
    failing = (ToolRecord("search", False, hash_arguments(FAILING)),) * 3
    first = await router.adecide(
        TASK, StepContext(run_id="r", step_index=3, tool_history=failing), remember=True
    )
    assert first.model == "large"  # the next tier up, not the top
    # Held at tier 2; one more failure keeps the risk above the threshold: tier 3, held from then on.
    worse = StepContext(run_id="r", step_index=4, tool_history=(*failing, failing[0]))
    second = await router.adecide(TASK, worse, remember=True)
    assert second.model == "top"
    assert second.reasons[0].startswith("4 tool errors in a row")
    assert "run 'r' was handed up to tier 2 at step 4" in " ".join(second.reasons)
    calm = await router.adecide(TASK, StepContext(run_id="r", step_index=5))
    assert calm.model == "top" and "handed up to tier 3 at step 5" in calm.reasons[0]
