"""Reading a LlamaIndex agent's history into a `StepContext`: steps, tool results, failures, loops."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage, TextBlock, ToolCallBlock

from gearshift import CallerHints, StepContext, StepType, hash_arguments
from gearshift_llamaindex._context import failed, step_context
from gearshift_llamaindex._convert import convert_messages

SYSTEM = ChatMessage(role="system", content="You are a support agent.")
REACT_SYSTEM = ChatMessage(
    role="system", content="Use this format:\nThought: ...\nAction: tool name\nAction Input: {...}"
)


def _context(history: list[ChatMessage], **options: Any) -> StepContext:
    return step_context(history, convert_messages(history), **options)


def _call(call_id: str, name: str, **kwargs: object) -> ChatMessage:
    return ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_call_id=call_id, tool_name=name, tool_kwargs=kwargs)]
    )


def _result(call_id: str, text: str, **extra: object) -> ChatMessage:
    return ChatMessage(role="tool", content=text, additional_kwargs={"tool_call_id": call_id, **extra})


def test_a_fresh_question_is_step_zero_and_acts_when_tools_are_offered() -> None:
    history = [SYSTEM, ChatMessage(role="user", content="Where is order A-17?")]
    acting = _context(history, has_tools=True, agent_id="support", run_id="r1", budget_keys=["team:cs"])
    assert (acting.step_index, acting.step_type, acting.tool_history) == (0, StepType.ACT, ())
    assert acting.spend_keys == ("agent:support", "run:r1", "team:cs")
    assert _context(history, has_tools=False).step_type is StepType.RESPOND


def test_function_calling_history_gives_steps_and_tool_records() -> None:
    history = [
        ChatMessage(role="user", content="an older question"),
        ChatMessage(role="assistant", content="an older answer"),
        ChatMessage(role="user", content="Where is order A-17?"),
        _call("c1", "lookup_order", order_id="A-17"),
        _result("c1", "shipped on Monday"),
        _call("c2", "check_inventory", sku="X"),
        _result("c2", "failed to reach the inventory service"),
    ]
    context = _context(history, has_tools=True)
    assert context.step_index == 2  # the older turn belongs to an earlier run
    assert context.step_type is StepType.OBSERVE
    assert [(r.name, r.ok) for r in context.tool_history] == [
        ("lookup_order", True),
        ("check_inventory", False),
    ]
    assert context.tool_history[0].args_hash == hash_arguments({"order_id": "A-17"})
    assert context.consecutive_tool_errors == 1


def test_a_new_user_turn_ends_the_error_streak_and_the_loop_of_the_turn_before() -> None:
    failing = [_call(f"c{i}", "lookup_order", order_id="A-17") for i in range(2)]
    first_turn = [
        ChatMessage(role="user", content="Where is order A-17?"),
        failing[0],
        _result("c0", "Error: the order service timed out"),
        failing[1],
        _result("c1", "Error: the order service timed out"),
    ]
    stuck = _context(first_turn, has_tools=True)
    assert (stuck.consecutive_tool_errors, stuck.repeated_tool_calls) == (2, 1)
    second_turn = [
        *first_turn,
        ChatMessage(role="assistant", content="The order service is down."),
        ChatMessage(role="user", content="Then what is your return policy?"),
    ]
    fresh = _context(second_turn, has_tools=True)
    assert (fresh.consecutive_tool_errors, fresh.repeated_tool_calls) == (0, 0)


def test_parallel_results_are_recorded_in_answer_order_and_repeats_are_seen() -> None:
    parallel = ChatMessage(
        role="assistant",
        blocks=[
            ToolCallBlock(tool_call_id="a", tool_name="search", tool_kwargs={"q": "x"}),
            ToolCallBlock(tool_call_id="b", tool_name="search", tool_kwargs={"q": "x"}),
        ],
    )
    history = [
        ChatMessage(role="user", content="find x"),
        parallel,
        _result("b", "none"),
        _result("a", "none"),
    ]
    context = _context(history, has_tools=True)
    assert [r.name for r in context.tool_history] == ["search", "search"]
    assert context.repeated_tool_calls == 1


def test_a_failure_is_read_from_the_flag_llamaindex_formats_and_error_text() -> None:
    assert failed("all good", {"is_error": True})
    assert failed("Encountered error: division by zero")
    assert failed("Tool get_wether not found. Please select a tool that is available.")
    assert failed("Error: quota exhausted")
    assert failed("Traceback (most recent call last): ...")
    assert not failed("The order shipped on Monday.")
    assert not failed("No errors were found in the log.")


def test_react_history_reads_actions_and_observations() -> None:
    history = [
        REACT_SYSTEM,
        ChatMessage(role="user", content="Where is order A-17?"),
        ChatMessage(
            role="assistant", content="Thought: look it up\nAction: lookup_order\nAction Input: {'id': 1}"
        ),
        ChatMessage(role="user", content="Observation: shipped"),
        ChatMessage(
            role="assistant", content="Thought: stock?\nAction: check_inventory\nAction Input: {'sku': 'X'}"
        ),
        ChatMessage(role="user", content="Observation: failed to reach the inventory service"),
    ]
    context = _context(history, has_tools=False)
    assert context.step_index == 2
    assert context.step_type is StepType.OBSERVE  # ReAct observations arrive as user messages
    assert [(r.name, r.ok) for r in context.tool_history] == [
        ("lookup_order", True),
        ("check_inventory", False),
    ]


def test_react_retry_requests_are_reflection_within_the_run() -> None:
    history = [
        REACT_SYSTEM,
        ChatMessage(role="user", content="Where is order A-17?"),
        ChatMessage(role="assistant", content="I think it shipped"),
        ChatMessage(role="user", content="Error while parsing the output: no Thought found"),
    ]
    context = _context(history, has_tools=False)
    assert (context.step_index, context.step_type) == (1, StepType.REFLECT)


def test_the_caller_may_override_the_step_type_and_give_hints() -> None:
    history = [ChatMessage(role="user", blocks=[TextBlock(text="Plan the migration")])]
    context = _context(history, has_tools=False, step_type="plan", hints=CallerHints(min_tier=2))
    assert context.step_type is StepType.PLAN
    assert context.hints.min_tier == 2
    assert context.metadata == {"framework": "llama_index"}


def test_recover_is_the_reflect_step_as_at_every_entry_point() -> None:
    history = [SYSTEM, ChatMessage(role="user", content="Where is order A-17?")]
    assert _context(history, has_tools=True, step_type="recover").step_type is StepType.REFLECT
