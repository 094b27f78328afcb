"""The model registry, step context and eligibility: ordering, counting, and errors that explain."""

from __future__ import annotations

import pytest

from gearshift import (
    CallerHints,
    ChatRequest,
    ConfigError,
    ImagePart,
    InvalidRequestError,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    NoEligibleModel,
    StepContext,
    StepType,
    TextPart,
    ToolRecord,
    ToolSpec,
    UnknownModelError,
    Usage,
    hash_arguments,
)
from gearshift.routing._eligibility import eligible_models


def _spec(model_id: str, tier: int, price: float, **extra: object) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "id": model_id,
            "provider": "p",
            "model": model_id,
            "tier": tier,
            "prices": {"input": price, "output": price * 4},
            **extra,
        }
    )


REGISTRY = ModelRegistry(
    [
        _spec("big", 3, 5.0),
        _spec("mid", 2, 1.0),
        _spec("tiny", 1, 0.1),
        _spec("tiny-pricey", 1, 0.3, supports_tools=False),
    ]
)


def test_registry_orders_weakest_and_cheapest_first() -> None:
    assert REGISTRY.ids == ("tiny", "tiny-pricey", "mid", "big")
    assert REGISTRY.tiers == (1, 2, 3)
    assert REGISTRY.cheapest.id == "tiny"
    assert REGISTRY.strongest.id == "big"


def test_an_unknown_model_id_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownModelError, match=r"unknown model id 'gpt-9'; the registry has: big, mid, tiny"
    ):
        REGISTRY["gpt-9"]
    with pytest.raises(KeyError):  # still a KeyError for code that expects one
        REGISTRY["gpt-9"]


def test_duplicate_ids_and_bad_fields_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'tiny' is defined twice"):
        ModelRegistry([_spec("tiny", 1, 0.1), _spec("tiny", 2, 1.0)])
    with pytest.raises(ConfigError, match=r"models\[1\]\.tier.*greater than or equal to 0"):
        ModelRegistry.from_dicts(
            [
                {"id": "a", "provider": "p", "model": "a", "tier": 1, "prices": {"input": 1, "output": 1}},
                {"id": "b", "provider": "p", "model": "b", "tier": -1, "prices": {"input": 1, "output": 1}},
            ]
        )
    with pytest.raises(ConfigError, match="at least one model"):
        ModelRegistry([])


def test_cost_counts_cached_input_at_its_own_price() -> None:
    prices = ModelPrices(input=2.0, output=8.0, cache_read=0.5)
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cache_read_tokens=400_000)
    assert prices.cost(usage) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0)


def test_step_context_counts_error_streaks_and_repeated_calls() -> None:
    same = hash_arguments({"q": "report", "page": 1})
    assert same == hash_arguments('{"page": 1,  "q": "report"}')  # order and spacing do not matter
    context = StepContext(
        tool_history=(
            ToolRecord("search", ok=True, args_hash="x"),
            ToolRecord("search", ok=False, args_hash=same),
            ToolRecord("search", ok=False, args_hash=same),
            ToolRecord("search", ok=False, args_hash=same),
        )
    )
    assert context.consecutive_tool_errors == 3
    assert context.repeated_tool_calls == 2
    assert StepContext().consecutive_tool_errors == 0


def test_a_user_turn_breaks_error_streaks_and_loops_but_not_the_run_s_history() -> None:
    failed = ToolRecord("search", ok=False, args_hash="q")
    # Two failed searches in an earlier turn; the user's latest message came after them.
    between_turns = StepContext(tool_history=(failed, failed), turn_start=2)
    assert (between_turns.consecutive_tool_errors, between_turns.repeated_tool_calls) == (0, 0)
    # This turn's first call repeats the earlier one: no loop, and one error so far.
    this_turn = StepContext(tool_history=(failed, failed, failed), turn_start=2)
    assert (this_turn.consecutive_tool_errors, this_turn.repeated_tool_calls) == (1, 0)
    assert len(this_turn.tool_history) == 3
    with pytest.raises(InvalidRequestError, match="turn_start must be between 0 and the 2 tool calls"):
        StepContext(tool_history=(failed, failed), turn_start=3)


def test_pacing_counts_the_steps_of_the_users_latest_turn() -> None:
    assert StepContext(step_index=5).step_in_turn == 5  # one turn: the run's steps
    assert StepContext(step_index=5, turn_step_index=1).step_in_turn == 1
    with pytest.raises(
        InvalidRequestError, match=r"turn_step_index must be between 0 and step_index \(2\), got 3"
    ):
        StepContext(step_index=2, turn_step_index=3)
    with pytest.raises(InvalidRequestError, match="turn_step_index must be between 0"):
        StepContext(step_index=2, turn_step_index=-1)


def test_a_blank_agent_or_run_id_is_refused_and_an_empty_one_names_no_one() -> None:
    # Spaces alone were charged to `agent: `, a key that no agent's limit, figure or report reads.
    with pytest.raises(InvalidRequestError, match="agent_id: is blank; name the agent or leave it out"):
        StepContext(agent_id="  ")
    with pytest.raises(InvalidRequestError, match="run_id: is blank; name the run or leave it out"):
        StepContext(run_id="\t")
    assert StepContext(agent_id="", run_id="").charged_keys("anonymous") == ("agent:anonymous",)


def test_step_types_parse_and_unknown_ones_list_the_choices() -> None:
    assert StepContext(step_type="PLAN").step_type is StepType.PLAN  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="unknown step type 'ponder'; use one of plan, act"):
        StepType.parse("ponder")


@pytest.mark.parametrize("word", [*(step.value for step in StepType), "recover", " Recover "])
def test_every_step_type_word_reads_alike_in_the_context_and_the_rules(word: str) -> None:
    from gearshift.policies._rule_conditions import RuleConditions

    expected = StepType.REFLECT if word.strip().lower() == "recover" else StepType(word)
    assert StepType.parse(word) is expected
    assert StepContext(step_type=word).step_type is expected  # type: ignore[arg-type]
    assert RuleConditions(step=word).step == (expected,)
    with pytest.raises(InvalidRequestError, match=r"or recover \(taken as reflect\)"):
        StepType.parse("recovery")


def test_contradictory_hints_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="min_tier 3 is above max_tier 1"):
        CallerHints(min_tier=3, max_tier=1)
    with pytest.raises(InvalidRequestError, match="max_cost_usd must be >= 0"):
        CallerHints(max_cost_usd=-1)
    with pytest.raises(InvalidRequestError, match="step_index must be >= 0"):
        StepContext(step_index=-1)


def _eligible(request: ChatRequest, context: StepContext | None = None) -> tuple[str, ...]:
    found = eligible_models(REGISTRY, request, context or StepContext(), input_tokens=100, output_tokens=100)
    return tuple(m.id for m in found)


def test_eligibility_checks_capabilities_and_hints() -> None:
    tool = ToolSpec(name="t")
    hello = (Message.user("hello"),)
    assert _eligible(ChatRequest(messages=hello, tools=(tool,))) == ("tiny", "mid", "big")
    assert _eligible(ChatRequest(messages=hello), StepContext(hints=CallerHints(min_tier=2))) == (
        "mid",
        "big",
    )
    assert _eligible(ChatRequest(messages=hello), StepContext(hints=CallerHints(force_model="mid"))) == (
        "mid",
    )


def test_when_nothing_fits_each_model_says_why() -> None:
    image = (Message.user([TextPart("what is this"), ImagePart(url="https://example.com/x.png")]),)
    with pytest.raises(NoEligibleModel) as caught:
        _eligible(ChatRequest(messages=image))
    assert set(caught.value.why) == set(REGISTRY.ids)
    assert "tiny: it does not accept images" in str(caught.value)


def test_forcing_an_unknown_model_names_it() -> None:
    with pytest.raises(UnknownModelError, match="'nope'"):
        _eligible(
            ChatRequest(messages=(Message.user("hi"),)), StepContext(hints=CallerHints(force_model="nope"))
        )


def test_a_request_too_long_for_every_window_says_so() -> None:
    with pytest.raises(NoEligibleModel, match="do not fit its context window of 128000"):
        eligible_models(
            REGISTRY,
            ChatRequest(messages=(Message.user("hi"),)),
            StepContext(),
            input_tokens=200_000,
            output_tokens=100,
        )
