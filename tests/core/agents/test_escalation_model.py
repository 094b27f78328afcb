"""The learned escalation: training and calibration, the policy's decisions, and the JSON artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hand_made_runs import looping_table, prompted_table

from gearshift import ConfigError
from gearshift.datasets import AgentRuns, load_agent_runs
from gearshift.escalation import (
    ESCALATION_FORMAT,
    FEATURE_NAMES,
    CheapestPolicy,
    EscalationModel,
    EscalationPolicy,
    facts_of,
    train_escalation,
)
from gearshift.evaluation._agent_replay import StepPrefixes, replay_steps
from gearshift.evaluation._agent_task_router import task_groups
from gearshift.learning._artifact import write_artifact


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> AgentRuns:
    return load_agent_runs(looping_table(tmp_path_factory.mktemp("esc") / "runs.jsonl"))


def test_errors_raise_the_risk_and_the_calibrated_policy_keeps_strong_success(runs: AgentRuns) -> None:
    model = train_escalation(runs, success_floor=0.95)
    weights = dict(zip(FEATURE_NAMES, model.weights, strict=True))
    assert weights["tool_errors"] > 0
    prefixes = StepPrefixes(runs)
    replay = replay_steps("learned-escalation", prefixes, EscalationPolicy(CheapestPolicy(), model))
    assert replay.success_rate >= 0.95
    # It keeps every clean cheap run: half the tasks never reach the strong model.
    assert replay.handover_rate == pytest.approx(0.5)
    # Looping tasks move up by their fourth call: at most 3 cheap steps ($0.003) plus the strong run.
    assert (replay.handover_steps[1::2] <= 3).all()
    clean = sum(t.weak.cost_usd for t in runs.tasks[::2])
    assert replay.cost_per_task == pytest.approx((12 * (0.003 + 0.03) + clean) / 24)


def test_the_decision_says_why_in_plain_words(runs: AgentRuns) -> None:
    model = train_escalation(runs).with_threshold(0.6, "test")
    prefixes = StepPrefixes(runs)
    policy = EscalationPolicy(CheapestPolicy(), model)
    stuck = prefixes.steps[1][3]  # three failed identical calls so far
    decision = policy.decide(stuck)
    assert decision.model == runs.strong
    risk = decision.scores["escalation_risk"]
    assert risk > 0.6
    assert (
        decision.reasons[0]
        == f"3 tool errors in a row and the same call 3 times: predicted failure {risk:.2f} > 0.60"
    )
    calm = policy.decide(prefixes.steps[0][0])
    assert calm.model == runs.weak
    assert calm.scores["escalation_risk"] <= 0.6
    assert "no hand-over" in calm.reasons[-1]


def test_a_handover_share_target_is_met_on_training(runs: AgentRuns) -> None:
    model = train_escalation(runs, target_handover_share=0.5)
    share = min(model.curve, key=lambda p: abs(p[0] - model.threshold))[1]
    assert share == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="one calibration target"):
        train_escalation(runs, target_handover_share=0.5, success_floor=0.9)
    with pytest.raises(ConfigError, match=r"success_floor must be in \[0, 1\], got 1.5"):
        train_escalation(runs, success_floor=1.5)


def test_the_artifact_round_trips(runs: AgentRuns, tmp_path: Path) -> None:
    model = train_escalation(runs)
    path = tmp_path / "escalation.json"
    model.save(path)
    loaded = EscalationModel.load(path)
    features = np.arange(len(FEATURE_NAMES), dtype=np.float64)
    assert loaded.risk(features) == pytest.approx(model.risk(features))
    assert (loaded.threshold, loaded.target, loaded.curve) == (model.threshold, model.target, model.curve)
    assert loaded.training == model.training


def test_bad_artifacts_are_refused(runs: AgentRuns, tmp_path: Path) -> None:
    path = tmp_path / "escalation.json"
    train_escalation(runs).save(path)
    with pytest.raises(ConfigError, match="escalation artifact not found"):
        EscalationModel.load(tmp_path / "missing.json")
    (tmp_path / "cut.json").write_text(path.read_text()[:100])
    with pytest.raises(ConfigError, match=r"not valid JSON .* may be truncated"):
        EscalationModel.load(tmp_path / "cut.json")
    document = json.loads(path.read_text())
    document["body"]["threshold"] = 0.01
    (tmp_path / "edited.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="escalation artifact is corrupt: its checksum"):
        EscalationModel.load(tmp_path / "edited.json")
    document["format"] = "gearshift.learned-router"
    (tmp_path / "router.json").write_text(json.dumps(document))
    with pytest.raises(
        ConfigError, match=r"expected a JSON object with format .gearshift\.learned-escalation."
    ):
        EscalationModel.load(tmp_path / "router.json")


def test_the_task_prior_hands_over_what_only_the_opening_prompt_tells_apart(tmp_path: Path) -> None:
    runs = load_agent_runs(prompted_table(tmp_path / "prompted.jsonl"))
    model = train_escalation(runs, prior=True)
    assert model.prior is not None
    assert model.features == (*FEATURE_NAMES, "task_prior")
    assert dict(zip(model.features, model.weights, strict=True))["task_prior"] > 0
    prefixes = StepPrefixes(runs)
    replay = replay_steps("learned-escalation", prefixes, EscalationPolicy(CheapestPolicy(), model))
    # Every run is clean: the hard requests go up at their first step, from the prompt alone.
    assert (replay.handover_steps[1::2] == 0).all()
    assert (replay.handover_steps[::2] == -1).all()
    path = tmp_path / "escalation.json"
    model.save(path)
    loaded = EscalationModel.load(path)
    assert loaded.prior is not None
    for route in (prefixes.steps[0][1], prefixes.steps[1][0]):
        facts = facts_of(route)
        assert loaded.risk(loaded.vector(route, facts)) == pytest.approx(
            model.risk(model.vector(route, facts))
        )
    # The same table without the prior cannot tell the tasks apart: it keeps success only by handing
    # over (nearly) every task.
    blind = train_escalation(runs, prior=False)
    blind_replay = replay_steps("blind", prefixes, EscalationPolicy(CheapestPolicy(), blind))
    assert blind.prior is None
    assert blind_replay.cost_per_task > replay.cost_per_task


def test_runs_beyond_the_training_range_are_read_as_its_extremes(runs: AgentRuns) -> None:
    model = train_escalation(runs)
    assert model.lower is not None and model.upper is not None
    far = model.upper * 100 + 10  # a run far longer and more error-ridden than any training run
    assert model.risk(far) == pytest.approx(model.risk(model.upper))
    assert model.risk(model.lower - 10) == pytest.approx(model.risk(model.lower))


def test_a_damaged_embedded_prior_or_feature_range_is_refused(tmp_path: Path) -> None:
    runs = load_agent_runs(prompted_table(tmp_path / "prompted.jsonl"))
    path = tmp_path / "escalation.json"
    train_escalation(runs, prior=True).save(path)
    body = json.loads(path.read_text())["body"]

    def refused(edit: dict[str, object], match: str) -> None:
        damaged = tmp_path / "damaged.json"
        write_artifact(damaged, {**body, **edit}, kind=ESCALATION_FORMAT)  # a valid checksum
        with pytest.raises(ConfigError, match=match) as caught:
            EscalationModel.load(damaged)
        assert str(damaged) in str(caught.value)

    refused({"prior": {**body["prior"], "models": ["a", "b"]}}, r"body\.prior: a task prior needs a router")
    refused(
        {"prior": {**body["prior"], "predictor": "x"}}, r"escalation artifact \(body\.prior\) is malformed"
    )
    refused({"prior": None}, r"body\.features are .*task_prior.*train it again")
    refused({"lower": body["upper"], "upper": body["lower"]}, r"body\.lower holds a value above body\.upper")


def test_the_prior_reads_the_opening_a_live_call_sees_when_the_request_is_in_the_runs(tmp_path: Path) -> None:
    runs = load_agent_runs(prompted_table(tmp_path / "prompted.jsonl", request_in_runs=True))
    assert len({task.prompt for task in runs.tasks}) == 1  # every table prompt is the same greeting
    assert len(set(task_groups(runs).tolist())) == len(runs)  # the requests still tell tasks apart
    model = train_escalation(runs, prior=True)
    replay = replay_steps("learned-escalation", StepPrefixes(runs), EscalationPolicy(CheapestPolicy(), model))
    assert (replay.handover_steps[1::2] == 0).all()
    assert (replay.handover_steps[::2] == -1).all()
