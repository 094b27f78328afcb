import pytest

from gearshift._context import CallerHints, StepContext, StepType, ToolRecord
from gearshift._decision import Decision
from gearshift._errors import ConfigError
from gearshift._messages import ChatRequest, Message, ToolCall, ToolSpec
from gearshift._models import ModelPrices, ModelRegistry, ModelSpec
from gearshift.policies import Policy, ScorerConfig, SignalScorer
from gearshift.routing._decide import decide

HARD_CODE = """Our async job runner deadlocks under load and I need a fix that must not lose jobs.
```python
import asyncio

async def worker(queue, results):
    while True:
        job = await queue.get()
        if job is None:
            break
        results[job.id] = await run(job)
        queue.task_done()
```
Traceback (most recent call last):
  File "runner.py", line 9, in worker
RuntimeError: Task got Future attached to a different loop
Why does this happen? Find the root cause, compare two fixes and their trade-offs, and rewrite the
worker so that it handles cancellation. Constraints: at most 4 workers, no more than 1 retry per job."""

LONG_PROOF = r"""Prove step by step that there are infinitely many primes of the form 4k + 3.
Be rigorous: justify every lemma you use, and show that the product argument works.
1. First show that a product of integers of the form 4k + 1 is again of that form.
2. Then assume, for a contradiction, that p_1, ..., p_n are all the primes of the form 4k + 3 and
   consider $N = 4 p_1 p_2 \cdots p_n - 1$.
3. Derive the contradiction and explain why the argument fails for primes of the form 4k + 1.
"""


def model(model_id: str, tier: int, price: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="openai",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price),
    )


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry(
        [model("mini", 0, 0.2), model("mid", 1, 3.0), model("mid-pricey", 1, 5.0), model("large", 2, 20.0)]
    )


# The scorer's mechanics (bands, step biases, escalations, thresholds) are checked with math and
# reasoning markers weighed as a config may weigh them; by default they weigh nothing (see below).
MARKERS = ScorerConfig(math_weight=0.6, reasoning_weight=0.6)


def route(
    registry: ModelRegistry,
    *messages: Message,
    policy: Policy | None = None,
    context: StepContext | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> Decision:
    request = ChatRequest(messages=messages, tools=tools)
    return decide(registry, policy or SignalScorer(MARKERS), request, context)


def ask(registry: ModelRegistry, text: str, **kwargs: object) -> Decision:
    return route(registry, Message.user(text), **kwargs)  # type: ignore[arg-type]


def tool_specs(count: int) -> tuple[ToolSpec, ...]:
    schema = {
        "type": "object",
        "properties": {
            f"arg_{i}": {"type": "string", "description": "what to look for " * 8} for i in range(6)
        },
    }
    return tuple(
        ToolSpec(
            name=f"tool_{i}",
            description="Searches the code base and returns matches. " * 6,
            parameters=schema,
        )
        for i in range(count)
    )


def agent_history(*results: tuple[str, str, bool]) -> tuple[Message, ...]:
    """A user task, then one (tool name, arguments, failed) call and result per item."""
    messages: list[Message] = [Message.user("The nightly export is missing rows; look into it.")]
    for index, (name, arguments, failed) in enumerate(results):
        messages.append(Message.assistant("", [ToolCall(f"c{index}", name, arguments)]))
        text = "Permission denied: /data/export" if failed else f"{index} rows checked, all present"
        messages.append(Message.tool(f"c{index}", text, is_error=failed))
    return tuple(messages)


def test_a_greeting_goes_to_the_bottom_tier(registry: ModelRegistry) -> None:
    decision = ask(registry, "hi there!")
    assert (decision.model, decision.tier, decision.policy) == ("mini", 0, "scorer")
    assert decision.reasons[0] == "no code, math or reasoning markers in a 7-token prompt"
    assert decision.scores["difficulty"] == 0.0
    assert decision.fallbacks == ("mid", "mid-pricey", "large")


@pytest.mark.parametrize("prompt", [HARD_CODE, LONG_PROOF])
def test_hard_code_and_long_proofs_go_to_the_top_tier(registry: ModelRegistry, prompt: str) -> None:
    decision = ask(registry, prompt)
    assert decision.model == "large"
    assert decision.scores["difficulty"] > 2 / 3


def test_a_medium_request_goes_to_the_cheapest_model_of_the_middle_tier(registry: ModelRegistry) -> None:
    prompt = "Compare PostgreSQL and MongoDB. What are the pros and cons? Which would you recommend, and why?"
    decision = ask(registry, prompt)
    assert decision.model == "mid"
    assert decision.fallbacks == ("mid-pricey", "large")
    assert decision.reasons[0].startswith("reasoning (0.70) markers in a ")


def test_by_default_math_and_reasoning_markers_are_read_but_weigh_nothing(registry: ModelRegistry) -> None:
    # On recorded weak/strong outcomes (GSM8K, MMLU) these markers anti-correlate with the strong model
    # winning; the default scorer names them in its reasons but does not route on them.
    decision = ask(registry, LONG_PROOF, policy=SignalScorer())
    assert decision.scores["math"] == decision.scores["reasoning"] == 0.0
    assert decision.reasons[0].startswith("math (")
    assert decision.tier < ask(registry, LONG_PROOF).tier
    assert ask(registry, HARD_CODE, policy=SignalScorer()).scores["code"] > 0.5  # code still weighs


def test_scores_hold_the_difficulty_and_every_component(registry: ModelRegistry) -> None:
    decision = ask(registry, HARD_CODE, context=StepContext(step_type=StepType.PLAN))
    components = {
        k: decision.scores[k] for k in ("code", "math", "reasoning", "length", "json", "task", "step")
    }
    assert components["code"] > 0.5
    assert components["step"] == 0.2
    assert decision.scores["difficulty"] == pytest.approx(min(1.0, sum(components.values())))
    assert decision.scores["escalation"] == 0.0


def test_many_tool_schemas_do_not_change_the_tier_of_an_easy_request(registry: ModelRegistry) -> None:
    plain = ask(registry, "What's the capital of Peru?")
    with_tools = ask(registry, "What's the capital of Peru?", tools=tool_specs(25))
    assert with_tools.model == plain.model == "mini"
    assert with_tools.scores["difficulty"] == plain.scores["difficulty"]
    assert "tool schemas not counted" in with_tools.reasons[0]


def test_a_tool_error_streak_raises_the_tier(registry: ModelRegistry) -> None:
    calm = route(registry, *agent_history(("ls", '{"p": "/a"}', False), ("cat", '{"p": "/b"}', False)))
    stuck = route(registry, *agent_history(("ls", '{"p": "/a"}', True), ("cat", '{"p": "/b"}', True)))
    assert stuck.tier == calm.tier + 1
    assert "2 consecutive tool errors: escalating one tier" in stuck.reasons
    assert stuck.scores["escalation"] == 1.0


def test_one_tool_error_is_not_yet_a_streak(registry: ModelRegistry) -> None:
    once = route(registry, *agent_history(("ls", '{"p": "/a"}', False), ("cat", '{"p": "/b"}', True)))
    assert once.scores["escalation"] == 0.0


def test_an_error_streak_in_the_context_alone_raises_the_tier(registry: ModelRegistry) -> None:
    failing = StepContext(tool_history=(ToolRecord("build", ok=False), ToolRecord("deploy", ok=False)))
    assert ask(registry, "Deploy again.", context=failing).tier == ask(registry, "Deploy again.").tier + 1


def test_a_repeated_identical_call_raises_the_tier(registry: ModelRegistry) -> None:
    fresh = route(
        registry, *agent_history(("grep", '{"q": "rows"}', False), ("grep", '{"q": "export"}', False))
    )
    loop = route(
        registry, *agent_history(("grep", '{"q": "rows"}', False), ("grep", '{ "q" : "rows" }', False))
    )
    assert loop.tier == fresh.tier + 1
    assert "repeated identical tool call (loop suspected: 2 in a row): escalating one tier" in loop.reasons


def test_errors_and_a_loop_together_climb_two_tiers(registry: ModelRegistry) -> None:
    decision = route(registry, *agent_history(("cat", '{"p": "/x"}', True), ("cat", '{"p": "/x"}', True)))
    assert (decision.tier, decision.scores["escalation"]) == (2, 2.0)


def test_escalating_from_the_top_tier_says_so(registry: ModelRegistry) -> None:
    stuck = StepContext(tool_history=(ToolRecord("run", ok=False),) * 3)
    decision = ask(registry, HARD_CODE, context=stuck)
    assert decision.model == "large"
    assert "3 consecutive tool errors: already at the top eligible tier (2)" in decision.reasons


def test_step_types_lean_up_and_down(registry: ModelRegistry) -> None:
    prompt = (
        "Compare PostgreSQL and MongoDB for an analytics workload. What are the pros and cons? "
        "Which would you recommend, and why? Explain the trade-offs for a small team."
    )
    decisions = {step: ask(registry, prompt, context=StepContext(step_type=step)) for step in StepType}
    tiers = {step: d.tier for step, d in decisions.items()}
    assert tiers[StepType.PLAN] == 2
    assert tiers[StepType.ACT] == tiers[StepType.RESPOND] == tiers[StepType.OTHER] == 1
    assert tiers[StepType.OBSERVE] == 0
    act = decisions[StepType.ACT].scores["difficulty"]
    for step, bias in ((StepType.PLAN, 0.2), (StepType.REFLECT, 0.15), (StepType.SUMMARIZE, -0.15)):
        assert decisions[step].scores["difficulty"] == pytest.approx(act + bias)


def test_an_observe_step_reading_a_tool_result_stays_cheap(registry: ModelRegistry) -> None:
    history = agent_history(("ls", '{"p": "/a"}', False))
    decision = route(registry, *history, context=StepContext(step_type=StepType.OBSERVE))
    assert decision.model == "mini"
    assert "observe step reading a tool result: cheapest tier is enough" in decision.reasons
    plan = route(registry, *history, context=StepContext(step_type=StepType.PLAN))
    assert "plan step: leaning up (+0.20)" in plan.reasons


def test_with_one_tier_everything_routes_there() -> None:
    single = ModelRegistry([model("only", 3, 1.0), model("only-pricey", 3, 2.0)])
    for prompt in ("hi", HARD_CODE):
        decision = ask(single, prompt, context=StepContext(tool_history=(ToolRecord("x", ok=False),) * 2))
        assert decision.model == "only"
        assert decision.fallbacks == ("only-pricey",)
        assert any(reason.endswith("(the only eligible tier)") for reason in decision.reasons)
        assert "2 consecutive tool errors: already at the top eligible tier (3)" in decision.reasons


def test_tiers_ruled_out_by_the_caller_are_skipped(registry: ModelRegistry) -> None:
    decision = ask(registry, "hi", context=StepContext(hints=CallerHints(min_tier=1)))
    assert decision.model == "mid"
    assert "difficulty 0.00 -> tier 1 of 1, 2 (cut points 0.50)" in decision.reasons


def test_weights_are_configurable(registry: ModelRegistry) -> None:
    mute_code = SignalScorer(ScorerConfig(code_weight=0.0, reasoning_weight=0.0))
    assert ask(registry, HARD_CODE, policy=mute_code).model != "large"
    eager = SignalScorer(ScorerConfig(task_bias={"creative": 0.5}))
    assert ask(registry, "Write a poem about the sea.", policy=eager).tier == 1


@pytest.mark.parametrize(
    ("thresholds", "tiers", "cuts"),
    [
        (None, 2, (0.5,)),
        (None, 3, (1 / 3, 2 / 3)),
        (None, 1, ()),
        ((0.2, 0.5), 3, (0.2, 0.5)),
        ((0.2, 0.5), 2, (0.35,)),
        ((0.2, 0.5), 4, (0.15, 0.35, 0.625)),
    ],
)
def test_cut_points_follow_the_configured_curve(
    thresholds: tuple[float, ...] | None, tiers: int, cuts: tuple[float, ...]
) -> None:
    assert ScorerConfig(thresholds=thresholds).cut_points(tiers) == pytest.approx(cuts)


def test_lower_thresholds_send_more_to_strong_tiers(registry: ModelRegistry) -> None:
    prompt = "Why is the sky blue?"
    assert ask(registry, prompt).tier == 0
    eager = SignalScorer(ScorerConfig(math_weight=0.6, reasoning_weight=0.6, thresholds=(0.05, 0.5)))
    assert ask(registry, prompt, policy=eager).tier == 1


@pytest.mark.parametrize(
    ("settings", "key", "message"),
    [
        ({"code_wieght": 0.5}, "routing.scorer.code_wieght", "unknown setting"),
        ({"code_weight": 2}, "routing.scorer.code_weight", "must be <= 1, got 2"),
        ({"thresholds": [0.6, 0.3]}, "routing.scorer.thresholds", "strictly ascending"),
        ({"thresholds": [0.5, 1.0]}, "routing.scorer.thresholds", "strictly between 0 and 1"),
        ({"step_bias": {"plann": 0.1}}, "routing.scorer.step_bias.plann", "'plan'"),
        ({"step_bias": {"plan": 3}}, "routing.scorer.step_bias", "[-1, 1]"),
        ({"task_bias": {"poetry": 0.1}}, "routing.scorer.task_bias", "unknown task 'poetry'"),
        ({"length_floor_tokens": 900, "length_ceiling_tokens": 800}, "routing.scorer", "above"),
        ({"escalate_after_errors": 0}, "routing.scorer.escalate_after_errors", "must be >= 1, got 0"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"gearshift\.toml") as caught:
        ScorerConfig.from_config(settings, source="gearshift.toml")
    assert caught.value.key == key
    assert message in str(caught.value)


def test_settings_from_a_table_are_validated() -> None:
    config = ScorerConfig.from_config({"step_bias": {"plan": 0.3}, "thresholds": [0.3, 0.6]})
    assert config.step_bias == {StepType.PLAN: 0.3}
    assert config.thresholds == (0.3, 0.6)
    with pytest.raises(ValueError, match="frozen"):
        config.code_weight = 0.1
