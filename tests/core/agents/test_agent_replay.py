"""Replaying policies over logged agent runs: figures worked out by hand on a three-task table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hand_made_runs import failing_run, row, smooth_run, write

from gearshift import Message, StepType, ToolCall, context_from_messages
from gearshift.datasets import AgentRuns, load_agent_runs
from gearshift.evaluation._agent_replay import (
    StepPrefixes,
    replay_fixed,
    replay_handovers,
    replay_oracle,
    replay_steps,
    replay_task_choice,
)
from gearshift.policies import SignalScorer


@pytest.fixture
def runs(tmp_path: Path) -> AgentRuns:
    rows = [
        # t0: the cheap model hits the same failing call 3 times (4 steps of $0.001) and fails; the
        # strong one succeeds in 2 steps of $0.01.
        row(0, (0.0, failing_run(3, 0.001)), (1.0, smooth_run(2, 0.01))),
        # t1: both succeed; the cheap run is 3 clean steps.
        row(1, (1.0, smooth_run(3, 0.001)), (1.0, smooth_run(2, 0.01))),
        # t2: both fail; the strong run meets one tool error.
        row(2, (0.0, smooth_run(2, 0.001)), (0.0, failing_run(1, 0.01))),
    ]
    return load_agent_runs(write(tmp_path / "runs.jsonl", rows))


def test_fixed_baselines_are_the_logged_runs(runs: AgentRuns) -> None:
    weak, strong = replay_fixed(runs, strong=False), replay_fixed(runs, strong=True)
    assert weak.success_rate == pytest.approx(1 / 3)
    assert weak.cost_per_task == pytest.approx((0.004 + 0.003 + 0.002) / 3)
    assert weak.handover_rate == 0.0
    assert strong.success_rate == pytest.approx(2 / 3)
    assert strong.cost_per_task == pytest.approx(0.02)
    assert strong.cost_per_success == pytest.approx(0.06 / 2)
    assert strong.handover_rate == 1.0


def test_the_oracle_takes_the_cheapest_model_that_did_best(runs: AgentRuns) -> None:
    oracle = replay_oracle(runs)
    assert list(oracle.handover_steps) == [0, -1, -1]
    assert oracle.success_rate == pytest.approx(2 / 3)
    assert oracle.cost_per_task == pytest.approx((0.02 + 0.003 + 0.002) / 3)


def test_a_hand_over_costs_the_cheap_prefix_plus_the_whole_strong_run(runs: AgentRuns) -> None:
    replay = replay_handovers("at-2", runs, [2, -1, 1])
    assert list(replay.success) == [1.0, 1.0, 0.0]
    assert list(replay.cost) == pytest.approx([0.002 + 0.02, 0.003, 0.001 + 0.02])


def test_the_shipped_scorer_hands_over_on_the_error_streak(runs: AgentRuns) -> None:
    prefixes = StepPrefixes(runs)
    # Before the cheap model's third call of task t0 it has seen two failed identical calls.
    context = prefixes.steps[0][2].context
    assert context.step_index == 2
    assert [r.ok for r in context.tool_history] == [False, False]
    assert context.step_type is StepType.OBSERVE
    assert prefixes.steps[0][2].signals.consecutive_tool_errors == 2
    replay = replay_steps("scorer-steps", prefixes, SignalScorer())
    # The scorer's default triggers (2 errors in a row, or a second identical call) both fire first
    # at step 2 of t0; step 1 has seen one error and no repeat.
    assert list(replay.handover_steps) == [2, -1, -1]
    assert replay.success_rate == pytest.approx(2 / 3)
    assert replay.cost_per_task == pytest.approx((0.022 + 0.003 + 0.002) / 3)


def test_a_task_choice_runs_the_chosen_model_whole(runs: AgentRuns) -> None:
    replay = replay_task_choice("task-router", runs, [True, False, True])
    assert replay.cost_per_task == pytest.approx((0.02 + 0.003 + 0.02) / 3)
    assert replay.success_rate == pytest.approx(2 / 3)


def test_bootstrap_intervals_hold_the_estimate(runs: AgentRuns) -> None:
    replay = replay_fixed(runs, strong=False)
    (s_lo, s_hi), (c_lo, c_hi) = replay.intervals()
    assert s_lo <= replay.success_rate <= s_hi
    assert c_lo <= replay.cost_per_task <= c_hi
    assert s_lo < s_hi


def test_context_from_messages_reads_a_history() -> None:
    messages = (
        Message.user("find order 7"),
        Message.assistant("", [ToolCall("c1", "lookup", '{"order": 7}')]),
        Message.tool("c1", "Error: not found"),
        Message.assistant("", [ToolCall("c2", "lookup", '{ "order":7 }')]),
        Message.tool("c2", "order 7: delivered"),
        Message.assistant("", [ToolCall("c3", "refund", "{}")]),
    )
    context = context_from_messages(messages, has_tools=True, run_id="r")
    assert context.step_index == 3
    assert [(r.name, r.ok) for r in context.tool_history] == [
        ("lookup", False),
        ("lookup", True),
        ("refund", True),
    ]
    assert context.tool_history[0].args_hash == context.tool_history[1].args_hash
    assert context.step_type is StepType.OTHER
    assert context_from_messages(messages[:3], has_tools=True).step_type is StepType.OBSERVE
    assert context_from_messages(messages[:1], has_tools=True).step_type is StepType.ACT
    assert context_from_messages(messages[:1], has_tools=False).step_type is StepType.OTHER
    assert context_from_messages(messages, has_tools=True, step_type="plan").step_type is StepType.PLAN
    assert np.isclose(context.consecutive_tool_errors, 0)


def test_context_from_messages_reads_streaks_from_the_users_latest_turn() -> None:
    lookup = '{"order": 7}'
    first_turn = (
        Message.user("find order 7"),
        Message.assistant("", [ToolCall("call_0", "lookup", lookup)]),
        Message.tool("call_0", "Error: not found", is_error=True),
        Message.assistant("", [ToolCall("call_0", "lookup", lookup)]),
        Message.tool("call_0", "Error: not found", is_error=True),
        Message.assistant("The order service is down."),
    )
    assert context_from_messages(first_turn, has_tools=True).consecutive_tool_errors == 2
    context = context_from_messages((*first_turn, Message.user("and order 8?")), has_tools=True)
    assert context.turn_start == 2 and len(context.tool_history) == 2
    assert context.consecutive_tool_errors == 0 and context.repeated_tool_calls == 0
    assert (context.step_index, context.step_in_turn) == (3, 0)  # pacing starts over with the turn
    reminder = (*first_turn[:3], Message.user("reminder: be brief"), first_turn[3])
    assert context_from_messages(reminder, has_tools=True).step_in_turn == 2  # beside results: no turn


def test_a_tool_result_marks_only_the_call_it_follows_when_ids_repeat() -> None:
    messages = (
        Message.user("find orders 7 and 8"),
        Message.assistant("", [ToolCall("call_0", "lookup", '{"order": 7}')]),
        Message.tool("call_0", "order 7: delivered"),
        Message.assistant("", [ToolCall("call_0", "lookup", '{"order": 8}')]),
        Message.tool("call_0", "Error: not found", is_error=True),
    )
    context = context_from_messages(messages, has_tools=True)
    assert [record.ok for record in context.tool_history] == [True, False]
