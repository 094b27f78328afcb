"""The default policy: the shipped difficulty estimate, its share above tier 1, the step signals on top."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from gearshift import GearshiftConfig, Router
from gearshift._context import StepContext, StepType, ToolRecord
from gearshift._errors import ConfigError
from gearshift._messages import ChatRequest, Message
from gearshift._models import ModelRegistry
from gearshift.datasets import (
    ROUTELLM_DATASETS,
    Outcome,
    OutcomeRow,
    OutcomeTable,
    load_routellm,
    load_tau_retail,
    save_outcomes,
    tau_retail_models,
)
from gearshift.evaluation import add_eval_parser, run_eval
from gearshift.evaluation._default_eval import bundled_overlap
from gearshift.learning import DEFAULT_UPPER_SHARE, DefaultPolicy, default_router
from gearshift.learning._default_policy import rank_of, upper_cut_points
from gearshift.learning._default_training import (
    UNUSED_FEATURES,
    default_training_table,
    train_default_router,
)
from gearshift.learning._features import CONTENT_FEATURES
from gearshift.learning._training import train_router
from gearshift.policies import RulesPolicy
from gearshift.routing._decide import decide
from gearshift.signals._signals import extract_signals

SHIPPED = Path(__file__).parents[2] / "packages/core/src/gearshift/learning/default_router.json"


@pytest.fixture
def registry(three_tiers: ModelRegistry) -> ModelRegistry:
    return three_tiers


def _ask(registry: ModelRegistry, policy: DefaultPolicy, text: str, context: StepContext | None = None):  # type: ignore[no-untyped-def]
    return decide(registry, policy, ChatRequest(messages=(Message.user(text),)), context)


def test_a_router_built_without_a_config_routes_with_the_default_policy() -> None:
    router = Router.from_config(GearshiftConfig.from_dict({}))
    assert router.policy.name == "default"
    decision = router.decide("What is the capital of France?")
    assert decision.policy == "default"
    assert decision.reasons[0].startswith("learned difficulty (15,416 bundled prompts): predicted gain")
    assert 0.0 <= decision.scores["learned"] <= 1.0


def test_rules_fall_back_to_the_default_policy_and_the_scorer_stays_a_policy() -> None:
    rules = {"routing": {"policy": "rules", "rules": [{"when": {"has_code": True}, "tier": 3}]}}
    router = Router.from_config(GearshiftConfig.from_dict(rules))
    assert isinstance(router.policy, RulesPolicy)
    assert router.decide("Hello there").policy == "default"
    scorer = Router.from_config(GearshiftConfig.from_dict({"routing": {"policy": "scorer"}}))
    assert scorer.decide("Hello there").policy == "scorer"


def test_about_the_configured_share_of_training_prompts_goes_above_tier_one(registry: ModelRegistry) -> None:
    prompts = [row.prompt_text for row in load_routellm("gsm8k").rows[::4]]
    prompts += [row.prompt_text for row in load_routellm("mmlu").rows[::40]]

    def share_up(policy: DefaultPolicy) -> float:
        return sum(_ask(registry, policy, text).tier > 0 for text in prompts) / len(prompts)

    default, eager = share_up(DefaultPolicy()), share_up(DefaultPolicy(upper_share=0.6))
    # The ranks are calibrated on held-out predictions, the shipped router predicts on prompts it saw.
    assert 0.15 <= default <= 0.5
    assert eager > default + 0.15


def test_the_step_signals_apply_on_top_of_the_learned_rank(registry: ModelRegistry) -> None:
    policy = DefaultPolicy()
    text = "Summarise this paragraph about the water cycle in one sentence."
    plain = _ask(registry, policy, text)
    plan = _ask(registry, policy, text, StepContext(step_type=StepType.PLAN))
    observe = _ask(registry, policy, text, StepContext(step_type=StepType.OBSERVE))
    assert plan.scores["difficulty"] == pytest.approx(min(1.0, plain.scores["difficulty"] + 0.2))
    assert observe.scores["difficulty"] == pytest.approx(max(0.0, plain.scores["difficulty"] - 0.25))
    assert "plan step: leaning up (+0.20)" in plan.reasons
    stuck = StepContext(tool_history=(ToolRecord("read", ok=False), ToolRecord("list", ok=False)))
    escalated = _ask(registry, policy, text, stuck)
    assert escalated.tier == plain.tier + 1
    assert "2 consecutive tool errors: escalating one tier" in escalated.reasons


def test_cut_points_put_the_configured_share_above_the_cheapest_tier() -> None:
    assert upper_cut_points(1, 0.3) == ()
    assert upper_cut_points(2, 0.3) == pytest.approx((0.7,))
    assert upper_cut_points(3, 0.3) == pytest.approx((0.7, 0.85))
    assert rank_of(-1.0, [0.0, 0.5, 1.0]) == 0.0
    assert rank_of(0.25, [0.0, 0.5, 1.0]) == pytest.approx(0.25)
    assert rank_of(2.0, [0.0, 0.5, 1.0]) == 1.0
    with pytest.raises(ConfigError, match=r"routing\.upper_share"):
        DefaultPolicy(upper_share=1.0)
    with pytest.raises(ConfigError, match=r"routing\.upper_share"):
        GearshiftConfig.from_dict({"routing": {"upper_share": 0}})
    assert GearshiftConfig.from_dict({}).routing.upper_share == DEFAULT_UPPER_SHARE


def test_the_shipped_estimate_is_small_and_trained_on_every_bundled_row() -> None:
    router = default_router()
    assert SHIPPED.stat().st_size < 150_000
    assert router.training.rows == sum(len(load_routellm(name)) for name in ROUTELLM_DATASETS)
    assert router.training.method == "linear" and router.training.seconds == 0.0
    assert router.features.tasks == ()  # users' requests carry no task label


def test_training_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    # The smallest leave-one-out set, trained twice: the shipped file is written by the same code
    # (packages/core/scripts/train_default_router.py --check compares the full one).
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        train_default_router(exclude=("mmlu",)).save(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    table = default_training_table(exclude=("mmlu",))
    assert [row.id for row in table] == sorted(row.id for row in table)
    with pytest.raises(ValueError, match="no bundled table or category named 'gsm9k'"):
        default_training_table(exclude=("gsm9k",))


def test_an_agents_system_prompt_does_not_read_as_difficulty() -> None:
    # The bundled prompts are single user turns: the estimate reads the size of the user's own text,
    # so a long system prompt (an agent's policy, tool results) does not move the request up.
    policy = DefaultPolicy()
    user = "Hello! I need to exchange a couple of items from my recent order."
    system = "You are a retail agent. Authenticate the user by email or by name and zip code first. " * 50
    plain, agent = (
        policy.rank_text(user, extract_signals(ChatRequest(messages=messages), StepContext()))
        for messages in ((Message.user(user),), (Message.system(system), Message.user(user)))
    )
    assert agent == plain
    weights = default_router().predictor.dense_weights
    for name in UNUSED_FEATURES:
        assert not weights[CONTENT_FEATURES.index(name)].any()
    assert weights[CONTENT_FEATURES.index("log_last_user_tokens")].all()


def test_training_can_leave_content_features_unread() -> None:
    table = _n_model_table(costs=True)
    router = train_router(table, method="linear", unused_features=("log_words",))
    weights = router.predictor.dense_weights  # type: ignore[union-attr]
    assert not weights[CONTENT_FEATURES.index("log_words")].any()
    assert weights[CONTENT_FEATURES.index("log_sentences")].any()
    with pytest.raises(ValueError, match="no content feature named 'log_wrods'"):
        train_router(table, method="linear", unused_features=("log_wrods",))


def test_training_can_leave_out_one_category_of_a_table() -> None:
    # MMLU's subjects as pseudo-unseen topics (tests/benchmarks/default_policy.py --groups).
    anatomy = {row.id for row in load_routellm("mmlu", task_labels="category") if row.task == "mmlu/anatomy"}
    left = default_training_table(exclude=("mmlu/anatomy", "gsm8k", "mt-bench"))
    assert anatomy and not anatomy & {row.id for row in left}
    assert len(left) == len(load_routellm("mmlu")) - len(anatomy)
    assert {row.task for row in left} == {"general"}  # no category label reaches the estimate
    with pytest.raises(ValueError, match="no bundled table or category named 'mmlu/anatomyy'"):
        default_training_table(exclude=("mmlu/anatomyy",))


def test_evaluation_leaves_out_every_bundled_table_that_shares_prompts() -> None:
    gsm8k = load_routellm("gsm8k")
    assert bundled_overlap(OutcomeTable(gsm8k.rows[:5])) == ("gsm8k",)
    assert bundled_overlap(load_routellm("mt-bench")) == ("mt-bench",)


def test_gearshift_eval_scores_the_default_policy_on_an_unseen_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        OutcomeRow(
            f"unseen-{i}",
            "unseen",
            f"Ticket {i}: " + "the export job drops a row when the queue is full " * (1 + i % 7),
            {"weak": Outcome(float(i % 3 != 0), 0.001), "strong": Outcome(float(i % 5 != 0), 0.01)},
        )
        for i in range(60)
    ]
    table = OutcomeTable(rows)
    assert bundled_overlap(table) == ()
    path = tmp_path / "unseen.jsonl"
    save_outcomes(table, path)
    parser = argparse.ArgumentParser(prog="gearshift")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    assert run_eval(parser.parse_args(["eval", "--data", str(path), "--policy", "default", "--json"])) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    default = report["policies"]["default"]
    assert default["apgr"] is None or 0.0 <= default["apgr"] <= 1.2
    assert default["latency_us"]["median"] > 0 and len(default["curve"]) > 2


def _n_model_table(costs: bool, medium_solves: int = 4) -> OutcomeTable:
    # Three models listed out of cost order; the hardest tickets (longest) defeat the smaller ones.
    prices = {"large": 0.01, "small": 0.0001, "medium": 0.001}
    rows = []
    for i in range(42):
        hard = i % 7
        scores = {"large": float(hard < 6), "small": float(hard < 2), "medium": float(hard < medium_solves)}
        rows.append(
            OutcomeRow(
                f"n-{i}",
                "tickets",
                f"Ticket {i}: " + "the export job drops a row when the queue is full. " * (1 + hard),
                {m: Outcome(scores[m], prices[m] if costs else None) for m in ("large", "small", "medium")},
            )
        )
    return OutcomeTable(rows)


def _eval_default(table: OutcomeTable, path: Path) -> None:
    """`gearshift eval --policy default --json` on `table`, saved at `path`; the output is captured."""
    save_outcomes(table, path)
    parser = argparse.ArgumentParser(prog="gearshift")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    args = ["eval", "--data", str(path), "--policy", "default", "--json", "--no-progress"]
    assert run_eval(parser.parse_args(args)) == 0


@pytest.mark.parametrize("costs", [True, False], ids=["with-costs", "without-costs"])
def test_gearshift_eval_scores_the_default_policy_on_an_n_model_table_and_says_what_it_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], costs: bool
) -> None:
    _eval_default(_n_model_table(costs), tmp_path / "three.jsonl")
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert list(report["models"]) == ["small", "medium", "large"]  # cheapest (or weakest) first
    axis, default_note, chance_note = report["notes"]
    assert axis.startswith("APGR and CPT: the quality gap from small") and "to large" in axis
    # Of three models a coin's APGR is not 0.5: the notes tell the reader what to compare with.
    chance = report["policies"]["default"]["chance_apgr"]
    assert chance is not None and f"default {chance:.3f}" in chance_note and "not above 0.5" in chance_note
    assert ("mean cost per request" in axis) is costs
    assert "medium costs nothing on this axis" in axis or costs
    assert "shipped estimate" in default_note and "over mixtral-8x7b-instruct" in default_note
    assert "3 of the table's 3 models are its tiers (small, medium, large;" in default_note
    assert "cut at rank 0.70 / 0.85" in default_note
    # The human table goes to stderr with the same notes, and names no cross-validation it did not run.
    assert "cross-validation" not in captured.err and "- default: the shipped estimate" in captured.err
    default = report["policies"]["default"]
    qualities = [quality for _, quality in default["curve"]]
    # The sweep runs from every prompt on the largest model to every prompt on the cheapest.
    assert qualities[0] == pytest.approx(36 / 42) == report["models"]["large"]["quality"]
    assert qualities[-1] == pytest.approx(12 / 42) == report["models"]["small"]["quality"]
    assert default["apgr"] is not None and 0.0 <= default["apgr"] <= 1.5


def test_the_default_on_an_n_model_table_skips_a_model_no_one_would_make_a_higher_tier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # medium costs ten times small and solves fewer tickets: a user would not configure it as tier 2.
    _eval_default(_n_model_table(costs=True, medium_solves=1), tmp_path / "dominated.jsonl")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    default_note = report["notes"][1]
    assert "2 of the table's 3 models are its tiers (small, large;" in default_note
    assert "not medium, which cost" in default_note and "cut at rank 0.70," in default_note
    # No operating point sends a prompt to medium: every point's cost is a mix of small's and large's.
    # (With medium as a tier, some points would hold prompts on it, at a cost between these steps.)
    for cost, _quality in report["policies"]["default"]["curve"]:
        on_large = (cost - 0.0001) / (0.01 - 0.0001) * 42  # how many prompts go to large
        assert on_large == pytest.approx(round(on_large), abs=1e-6) and 0 <= round(on_large) <= 42


def test_the_default_on_a_table_whose_cheapest_model_is_best_sends_everything_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every model scores alike (a benchmark too easy for all of them): no costlier model is worth a
    # tier, so the default has one tier and one operating point. This used to end in a traceback.
    prices = {"small": 0.0001, "medium": 0.001, "large": 0.01}
    rows = [
        OutcomeRow(
            f"easy-{i}",
            "chores",
            f"Rename file {i} to lower case.",
            {m: Outcome(1.0, p) for m, p in prices.items()},
        )
        for i in range(12)
    ]
    _eval_default(OutcomeTable(rows), tmp_path / "easy.jsonl")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    default = report["policies"]["default"]
    assert default["curve"] == [[pytest.approx(0.0001), 1.0]] and default["apgr"] is None
    assert (default["quality"], default["strong_share"]) == (1.0, 1.0)
    axis, default_note = report["notes"]
    assert axis == (
        "APGR and CPT: none, as no model scores better on average than small (cheapest, 1.000): there is "
        "no quality gap for a router to recover"
    )
    assert "1 of the table's 3 models is its tier (small;" in default_note
    assert "not medium, large, which cost" in default_note and "every prompt goes to small" in default_note


def test_every_step_of_the_tau_bench_runs_is_decided_as_by_a_policy_that_kept_nothing() -> None:
    """The default policy keeps what a text adds to its margins for the next call: on every step of
    every tau-bench run (user turns, tool results, tool errors, repeated calls), decided in order by
    one policy, the decision is the one a new policy makes, reasons and scores to the last bit."""
    registry = ModelRegistry(list(tau_retail_models()))
    kept = DefaultPolicy()
    steps = 0
    for row in load_tau_retail().table.rows:
        for outcome in row.outcomes.values():
            assert outcome.run is not None
            chat = (*row.prompt, *outcome.run.chat)
            for index in outcome.run.steps:
                history = chat[: len(row.prompt) + index]
                request = ChatRequest(messages=history, tools=())
                context = StepContext(step_type=StepType.ACT, step_index=steps % 7)
                assert decide(registry, kept, request, context) == decide(
                    registry, DefaultPolicy(), request, context
                ), (row.id, index)
                steps += 1
    assert steps > 2_000
