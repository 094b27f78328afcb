from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gearshift._context import CallerHints, StepContext, StepType, ToolRecord
from gearshift._decision import Decision
from gearshift._errors import ConfigError
from gearshift._messages import ChatRequest, ImagePart, Message, TextPart, ToolCall, ToolSpec
from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift.policies import Rule, RuleConditions, RulesPolicy, SignalScorer
from gearshift.routing._decide import decide

CODE = "Why does this fail?\n```python\ndef f(x):\n    return x / 0\n```\nZeroDivisionError: division by zero"


def model(model_id: str, tier: int, price: float, *, vision: bool = False) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="openai",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price),
        supports_vision=vision,
    )


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry(
        [
            model("mini", 0, 0.2, vision=True),
            model("mid", 1, 3.0),
            model("mid-vision", 1, 4.0, vision=True),
            model("large", 2, 20.0, vision=True),
        ]
    )


def rules(*raw: Mapping[str, Any]) -> RulesPolicy:
    return RulesPolicy.from_config(raw, fallback=SignalScorer())


def route(
    registry: ModelRegistry,
    policy: RulesPolicy,
    text: str | Sequence[TextPart | ImagePart] = "hi there",
    *,
    context: StepContext | None = None,
    history: Sequence[Message] = (),
    **request: Any,
) -> Decision:
    messages = (Message.user(text), *history)
    return decide(registry, policy, ChatRequest(messages=messages, **request), context)


def test_no_match_falls_back_to_the_other_policy(registry: ModelRegistry) -> None:
    policy = rules({"when": {"step": "plan"}, "tier": 2})
    decision = route(registry, policy)
    assert (decision.model, decision.policy) == ("mini", "scorer")
    assert decision.reasons[0] == "no rule matched: the scorer policy decides"
    assert "difficulty" in decision.scores


def test_a_tier_rule_picks_the_cheapest_model_of_that_tier(registry: ModelRegistry) -> None:
    policy = rules({"name": "plans", "when": {"step": ["plan", "reflect"]}, "tier": 1})
    decision = route(registry, policy, context=StepContext(step_type=StepType.REFLECT))
    assert (decision.model, decision.tier, decision.policy) == ("mid", 1, "rules")
    assert decision.fallbacks == ("mid-vision", "large")
    assert decision.reasons == ("rule 0 'plans' matched (step is plan or reflect): tier 1: mid",)
    assert decision.scores == {"rule": 0.0}


def test_the_first_matching_rule_wins(registry: ModelRegistry) -> None:
    policy = rules(
        {"when": {"task": "summarize"}, "tier": 0},
        {"name": "agents", "when": {"agent": "coder-*"}, "tier": 2},
        {"when": {"agent": "coder-7"}, "tier": 1},
    )
    decision = route(registry, policy, context=StepContext(agent_id="coder-7"))
    assert decision.model == "large"
    assert decision.reasons[0].startswith("rule 1 'agents' matched (agent matches 'coder-*')")
    summary = route(
        registry, policy, "Summarize this memo: all good.", context=StepContext(agent_id="coder-7")
    )
    assert summary.model == "mini"


def test_a_rule_without_conditions_always_matches(registry: ModelRegistry) -> None:
    assert route(registry, rules({"model": "large"}), "hi").model == "large"


def test_a_model_rule_routes_to_that_model(registry: ModelRegistry) -> None:
    decision = route(registry, rules({"when": {"has_code": True}, "model": "mid-vision"}), CODE)
    assert decision.model == "mid-vision"
    assert decision.reasons == ("rule 0 matched (code markers present): model mid-vision",)


def test_an_ineligible_model_falls_through_to_the_next_rule(registry: ModelRegistry) -> None:
    policy = rules(
        {"name": "pin", "model": "mid"},
        {"name": "vision", "when": {"has_images": True}, "tier": 1},
    )
    image: list[TextPart | ImagePart] = [
        TextPart("What is this?"),
        ImagePart(url="https://example.com/cat.png"),
    ]
    decision = route(registry, policy, image)
    assert decision.model == "mid-vision"
    assert decision.reasons[0] == (
        "rule 0 'pin' matched (no conditions) but model 'mid' is not eligible for this request: "
        "trying the next rule"
    )
    assert decision.reasons[1].startswith("rule 1 'vision' matched (images attached)")


def test_falling_through_every_rule_reaches_the_fallback_with_the_notes(registry: ModelRegistry) -> None:
    decision = route(registry, rules({"model": "large"}), context=StepContext(hints=CallerHints(max_tier=1)))
    assert decision.model == "mini"
    assert decision.reasons[0].startswith("rule 0 matched (no conditions) but model 'large' is not eligible")
    assert decision.reasons[1] == "no rule matched: the scorer policy decides"


def test_a_tier_without_eligible_models_goes_to_the_nearest(registry: ModelRegistry) -> None:
    decision = route(registry, rules({"tier": 2}), context=StepContext(hints=CallerHints(max_tier=1)))
    assert decision.model == "mid"
    assert "tier 2 has no eligible model, nearest is tier 1" in decision.reasons[0]


def test_min_tier_raises_the_fallback_choice(registry: ModelRegistry) -> None:
    decision = route(
        registry, rules({"name": "floor", "when": {"has_tools": True}, "min_tier": 1}), tools=tools()
    )
    assert (decision.model, decision.policy) == ("mid", "rules")
    assert decision.reasons[-1] == "rule 0 'floor' matched (tools offered): raising tier 0 to min_tier 1: mid"
    assert decision.scores["rule"] == 0.0
    assert "difficulty" in decision.scores  # the fallback's scores are kept


def test_max_tier_lowers_the_fallback_choice(registry: ModelRegistry) -> None:
    decision = route(registry, rules({"when": {"task": "code"}, "max_tier": 0}), CODE)
    assert decision.model == "mini"
    assert decision.reasons[-1].startswith("rule 0 matched (task is code): lowering tier ")
    assert decision.fallbacks == ("mid", "mid-vision", "large")


def test_a_choice_within_the_clamp_is_kept(registry: ModelRegistry) -> None:
    decision = route(registry, rules({"min_tier": 0, "max_tier": 1}))
    assert (decision.model, decision.policy) == ("mini", "rules")
    assert decision.reasons[-1] == "rule 0 matched (no conditions): tier 0 is within min_tier 0 to max_tier 1"


def tools() -> tuple[ToolSpec, ...]:
    return (ToolSpec(name="search", description="Search the web."),)


def failing_history(count: int) -> list[Message]:
    history: list[Message] = []
    for i in range(count):
        history += [
            Message.assistant("", [ToolCall(f"c{i}", "run", '{"cmd": "make"}')]),
            Message.tool(f"c{i}", "x"),
        ]
    history[-1] = Message.tool(f"c{count - 1}", "Error: make failed")
    return history


@pytest.mark.parametrize(
    ("when", "matching", "other"),
    [
        ({"step": "observe"}, {"context": StepContext(step_type=StepType.OBSERVE)}, {}),
        ({"task": ["translate", "summarize"]}, {"text": "Translate to German: good morning"}, {}),
        (
            {"agent": "research-?"},
            {"context": StepContext(agent_id="research-1")},
            {"context": StepContext()},
        ),
        (
            {"agent": ["a", "b*"]},
            {"context": StepContext(agent_id="bob")},
            {"context": StepContext(agent_id="c")},
        ),
        ({"min_prompt_tokens": 50}, {"text": "word " * 80}, {}),
        ({"max_prompt_tokens": 50}, {}, {"text": "word " * 80}),
        ({"has_code": True}, {"text": CODE}, {}),
        ({"has_code": False}, {}, {"text": CODE}),
        ({"has_code": 0.1}, {"text": "Write a Python function."}, {}),
        ({"has_math": True}, {"text": "Solve 3x + 4 = 19 and compute x^2."}, {}),
        ({"min_consecutive_tool_errors": 1}, {"history": failing_history(2)}, {}),
        ({"min_repeated_tool_calls": 1}, {"history": failing_history(2)}, {"history": failing_history(1)}),
        ({"has_tools": True}, {"tools": tools()}, {}),
        ({"has_tools": False}, {}, {"tools": tools()}),
        ({"needs_json": True}, {"response_schema": {"type": "object"}}, {}),
        ({"has_images": True}, {"text": [ImagePart(url="https://example.com/a.png")]}, {}),
        (
            {"metadata": {"tenant": "acme", "tier": 2}},
            {"context": StepContext(metadata={"tenant": "acme", "tier": 2})},
            {"context": StepContext(metadata={"tenant": "acme"})},
        ),
    ],
)
def test_each_condition(
    registry: ModelRegistry, when: dict[str, Any], matching: dict[str, Any], other: dict[str, Any]
) -> None:
    # The scorer behind the rules never picks mid-vision: mid is the cheaper model of tier 1.
    policy = rules({"when": when, "model": "mid-vision"})
    assert route(registry, policy, **matching).model == "mid-vision"
    assert route(registry, policy, **other).model != "mid-vision"


def test_every_condition_must_hold(registry: ModelRegistry) -> None:
    policy = rules({"when": {"step": "plan", "agent": "coder"}, "tier": 2})
    assert route(registry, policy, context=StepContext(step_type=StepType.PLAN, agent_id="coder")).tier == 2
    assert route(registry, policy, context=StepContext(step_type=StepType.PLAN, agent_id="writer")).tier == 0
    assert route(registry, policy, context=StepContext(step_type=StepType.ACT, agent_id="coder")).tier == 0


def test_error_counts_from_the_context_match_too(registry: ModelRegistry) -> None:
    policy = rules({"when": {"min_consecutive_tool_errors": 3}, "model": "large"})
    history = tuple(ToolRecord(f"t{i}", ok=False) for i in range(3))
    assert route(registry, policy, context=StepContext(tool_history=history)).model == "large"
    two = route(registry, policy, context=StepContext(tool_history=history[1:]))
    assert two.reasons[0] == "no rule matched: the scorer policy decides"


def test_rules_can_be_built_in_python(registry: ModelRegistry) -> None:
    rule = Rule(name="plans", when=RuleConditions(step=StepType.PLAN), tier=2)  # type: ignore[arg-type]
    policy = RulesPolicy([rule], SignalScorer())
    assert route(registry, policy, context=StepContext(step_type=StepType.PLAN)).model == "large"
    assert repr(policy) == "RulesPolicy(1 rules, fallback='scorer')"


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        (
            {"when": {"stepp": "plan"}, "tier": 1},
            "routing.rules[3].when.stepp",
            "unknown key 'stepp'; did you mean 'step'?",
        ),
        ({"when": {"step": "plann"}, "tier": 1}, "routing.rules[3].when.step", "unknown step type 'plann'"),
        ({"when": {"step": ["plan", 7]}, "tier": 1}, "routing.rules[3].when.step", "unknown step type 7"),
        ({"when": {"task": "poetry"}, "tier": 1}, "routing.rules[3].when.task", "unknown task 'poetry'"),
        ({"when": {"agent": ""}, "tier": 1}, "routing.rules[3].when.agent", "non-empty"),
        ({"when": {"has_code": 2}, "tier": 1}, "routing.rules[3].when.has_code", "between 0 and 1"),
        (
            {"when": {"has_tools": "yes"}, "tier": 1},
            "routing.rules[3].when.has_tools",
            'must be true or false, got "yes"',
        ),
        (
            {"when": {"min_prompt_tokens": 9, "max_prompt_tokens": 3}, "tier": 1},
            "routing.rules[3].when",
            "above",
        ),
        ({"when": "plan", "tier": 1}, "routing.rules[3].when", 'must be a table, got "plan"'),
        ({"tier": -1}, "routing.rules[3].tier", "must be >= 0, got -1"),
        ({"tier": "2"}, "routing.rules[3].tier", 'must be an integer, got "2"'),
        ({"tier": True}, "routing.rules[3].tier", "must be an integer, got true"),
        ({"min_tier": 2, "max_tier": 1}, "routing.rules[3]", "min_tier 2 is above max_tier 1"),
        ({"model": "large", "tier": 1}, "routing.rules[3]", "exactly one action"),
        ({"when": {"step": "plan"}}, "routing.rules[3]", "got none"),
        ({"modle": "large"}, "routing.rules[3].modle", "unknown key 'modle'; did you mean 'model'?"),
    ],
)
def test_bad_rules_name_the_key(raw: dict[str, Any], key: str, message: str) -> None:
    good = {"tier": 0}
    with pytest.raises(ConfigError) as caught:
        RulesPolicy.from_config([good, good, good, raw], fallback=SignalScorer(), source="gearshift.toml")
    assert caught.value.key == key
    assert caught.value.source == "gearshift.toml"
    assert message in str(caught.value)


def test_the_constructor_takes_rule_objects_only() -> None:
    with pytest.raises(TypeError, match=r"rules\[0\] is a dict, not a Rule; use RulesPolicy.from_config"):
        RulesPolicy([{"tier": 1}], SignalScorer())  # type: ignore[list-item]


def test_rules_must_be_a_list_of_tables() -> None:
    with pytest.raises(ConfigError, match="must be a list of rules") as caught:
        RulesPolicy.from_config({"tier": 1}, fallback=SignalScorer())  # type: ignore[arg-type]
    assert caught.value.key == "routing.rules"
    with pytest.raises(ConfigError, match="a rule must be a table, got str") as caught:
        RulesPolicy.from_config(["tier = 1"], fallback=SignalScorer())  # type: ignore[list-item]
    assert caught.value.key == "routing.rules[0]"


def test_with_a_registry_model_ids_and_tiers_are_checked(registry: ModelRegistry) -> None:
    def load(*raw: Mapping[str, Any]) -> RulesPolicy:
        return RulesPolicy.from_config(raw, fallback=SignalScorer(), registry=registry)

    assert len(load({"model": "large"}, {"tier": 2}).rules) == 2
    with pytest.raises(ConfigError, match="unknown model id 'huge'; the registry has: mini") as caught:
        load({"tier": 0}, {"model": "huge"})
    assert caught.value.key == "routing.rules[1].model"
    with pytest.raises(ConfigError, match="no model has tier 5; the registry's tiers are 0, 1, 2") as caught:
        load({"max_tier": 5})
    assert caught.value.key == "routing.rules[0].max_tier"
