"""The StepContext of a call: from LangGraph's metadata, the caller's run metadata and the history."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from gearshift import (
    CallerHints,
    InvalidRequestError,
    Router,
    StepContext,
    StepType,
    ToolRecord,
    hash_arguments,
)
from gearshift_langchain import RoutedChatModel
from gearshift_langchain._context import StepDefaults, loop_model, step_context
from gearshift_langchain._convert import convert_messages

LANGGRAPH = {"thread_id": "t-7", "langgraph_node": "model", "langgraph_step": 3, "agent_id": "scout"}


def _context(metadata: Any, history: list[BaseMessage], *args: Any, **options: Any) -> StepContext:
    return step_context(metadata, history, convert_messages(history), *args, **options)


def _call(call_id: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": "search", "args": args, "id": call_id, "type": "tool_call"}


HISTORY: list[BaseMessage] = [
    HumanMessage("find it"),
    AIMessage("", tool_calls=[_call("c1", {"q": "a"})]),
    ToolMessage("timeout", tool_call_id="c1", status="error"),
    AIMessage("", tool_calls=[_call("c2", {"q": "a"}), _call("c3", {"q": "b"})]),
    ToolMessage("ok", tool_call_id="c2"),
    ToolMessage("ok", tool_call_id="c3"),
]


def test_langgraph_metadata_and_the_history_fill_the_context() -> None:
    context = _context(LANGGRAPH, HISTORY, StepDefaults(budget_keys=("team:a",)), has_tools=True)
    assert (context.agent_id, context.run_id) == ("scout", "t-7")
    assert context.step_type is StepType.OBSERVE  # a ToolMessage last: reading tool results
    assert context.step_index == 2  # two model calls so far
    assert context.tool_history == (
        ToolRecord("search", False, hash_arguments({"q": "a"})),
        ToolRecord("search", True, hash_arguments({"q": "a"})),
        ToolRecord("search", True, hash_arguments({"q": "b"})),
    )
    assert context.spend_keys == ("agent:scout", "run:t-7", "team:a")
    assert context.metadata == {"framework": "langchain", "langgraph_node": "model", "langgraph_step": 3}


def test_a_failed_result_marks_only_the_call_it_answers_when_ids_repeat_across_steps() -> None:
    # The router names the calls of a server that sends no ids `call_<index>`: every step has a call_0.
    history: list[BaseMessage] = [
        HumanMessage("find it"),
        AIMessage("", tool_calls=[_call("call_0", {"q": "a"})]),
        ToolMessage("found a", tool_call_id="call_0"),
        AIMessage("", tool_calls=[_call("call_0", {"q": "b"})]),
        ToolMessage("timeout", tool_call_id="call_0", status="error"),
    ]
    context = _context({}, history, StepDefaults(), has_tools=True)
    assert [record.ok for record in context.tool_history] == [True, False]


@pytest.mark.parametrize(
    ("node", "history", "has_tools", "expected"),
    [
        ("model", [HumanMessage("go")], True, StepType.ACT),
        ("model", [HumanMessage("hi")], False, StepType.OTHER),
        ("planner", [HumanMessage("go")], True, StepType.PLAN),
        ("final_answer", HISTORY, True, StepType.RESPOND),
        ("summarizeFindings", [HumanMessage("go")], False, StepType.SUMMARIZE),
        ("critic", [HumanMessage("go")], False, StepType.REFLECT),
        ("extract_facts", [HumanMessage("go")], False, StepType.OTHER),  # "extract" is not "act"
    ],
)
def test_the_step_type_is_read_from_the_node_name_then_the_history(
    node: str, history: list[BaseMessage], has_tools: bool, expected: StepType
) -> None:
    context = _context({"langgraph_node": node}, history, StepDefaults(), has_tools=has_tools)
    assert context.step_type is expected


def test_the_caller_sets_the_step_type_and_bounds_in_run_metadata() -> None:
    metadata = {
        **LANGGRAPH,
        "step_type": "Plan",
        "min_tier": 2,
        "budget_keys": ["team:b"],
        "expected_steps": 8,
    }
    defaults = StepDefaults(
        agent_id="fallback", budget_keys=("team:a",), step_type=StepType.ACT, hints=CallerHints(max_tier=3)
    )
    context = _context(metadata, HISTORY, defaults, has_tools=True, force_model=None)
    assert context.step_type is StepType.PLAN
    assert context.agent_id == "scout"
    assert context.budget_keys == ("team:a", "team:b")
    assert context.expected_steps == 8
    assert context.hints == CallerHints(min_tier=2, max_tier=3)
    assert _context({}, HISTORY, defaults, has_tools=True).step_type is StepType.ACT  # the model's own
    # A call that sets no bound of its own (or sets them to None) keeps the model's; a forced model wins.
    unbounded = {"min_tier": None, "max_tier": None, "max_cost_usd": None}
    assert _context(unbounded, HISTORY, defaults, has_tools=True).hints == CallerHints(max_tier=3)
    forced = _context({}, HISTORY, defaults, has_tools=True, force_model="large").hints
    assert forced == CallerHints(force_model="large", max_tier=3)


def test_the_named_agent_calling_the_model_is_the_agent_unless_the_caller_or_model_names_one() -> None:
    named = {"thread_id": "t-7", "lc_agent_name": "pricer"}  # `create_agent(..., name="pricer")`
    assert _context(named, HISTORY, StepDefaults(), has_tools=True).agent_id == "pricer"
    assert _context(named, HISTORY, StepDefaults(agent_id="model"), has_tools=True).agent_id == "model"
    caller = {**named, "agent_id": "caller"}
    assert _context(caller, HISTORY, StepDefaults(agent_id="model"), has_tools=True).agent_id == "caller"


def test_another_named_agents_answer_starts_this_agents_turn() -> None:
    handed = [*HISTORY, AIMessage("Found two results.", name="researcher")]
    pricer = _context({"lc_agent_name": "pricer"}, handed, StepDefaults(), has_tools=True)
    assert (pricer.step_type, pricer.step_index, pricer.turn_step_index) == (StepType.ACT, 3, 0)
    assert pricer.turn_start == 3 and pricer.consecutive_tool_errors == 0
    # The researcher's own answer, or an answer with no agent named, goes on the same turn.
    researcher = _context({"lc_agent_name": "researcher"}, handed, StepDefaults(), has_tools=True)
    assert (researcher.step_type, researcher.turn_start, researcher.turn_step_index) == (StepType.OTHER, 0, 3)
    assert _context({}, handed, StepDefaults(), has_tools=True).turn_start == 0


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"step_type": "ponder"}, "unknown step type 'ponder'; use one of plan, act"),
        ({"min_tier": "2"}, "'min_tier' must be a tier"),
        ({"budget_keys": "team:a"}, "'budget_keys' must be a list of strings"),
        ({"expected_steps": 0}, "'expected_steps' must be a positive int"),
        ({"max_cost_usd": "cheap"}, "'max_cost_usd' must be a number"),
        ({"agent_id": ["a"]}, "'agent_id' must be a string"),
    ],
)
def test_bad_run_metadata_is_refused_with_the_key_named(metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        _context(metadata, HISTORY, StepDefaults(), has_tools=True)


def test_recover_is_the_reflect_step_in_run_metadata_and_in_the_setting(router: Router) -> None:
    assert _context({"step_type": "recover"}, HISTORY, StepDefaults(), has_tools=True).step_type is (
        StepType.REFLECT
    )
    assert RoutedChatModel(router=router, step_type="recover").step_type is StepType.REFLECT
    with pytest.raises(ValueError, match="unknown step type 'ponder'"):
        RoutedChatModel(router=router, step_type="ponder")


def test_the_model_that_started_a_tool_loop_is_known_from_its_metadata() -> None:
    routed = AIMessage(
        "", tool_calls=[_call("c9", {})], response_metadata={"gearshift": {"model_id": "large"}}
    )
    assert loop_model([HumanMessage("q"), routed, ToolMessage("r", tool_call_id="c9")]) == "large"
    assert loop_model([HumanMessage("q"), routed]) is None  # not reading tool results
    assert (
        loop_model(
            [
                HumanMessage("q"),
                AIMessage("", tool_calls=[_call("c9", {})]),
                ToolMessage("r", tool_call_id="c9"),
            ]
        )
        is None
    )


@pytest.mark.async_run_config
async def test_a_hand_written_graph_gets_its_node_step_and_run_metadata_routed(router: Router) -> None:
    model = RoutedChatModel(router=router, agent_id="writer")

    async def planner(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("planner", planner)
    app = graph.add_edge(START, "planner").add_edge("planner", END).compile()
    result = await app.ainvoke({"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "t-9"}})

    reasons = result["messages"][-1].response_metadata["gearshift"]["reasons"]
    assert "plan step: leaning up (+0.20)" in reasons  # the node's name made it a plan step
