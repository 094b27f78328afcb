"""Agent outcome tables: the run format, its checks and fallbacks, and the bundled tau-bench runs."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hand_made_runs import PROMPT, assistant, failing_run, row, smooth_run, tool, write

from gearshift import ModelPrices
from gearshift.config._pricing import lookup_prices
from gearshift.datasets import (
    TAU_RETAIL_PRICES,
    OutcomeTableError,
    load_agent_runs,
    load_outcomes,
    load_tau_retail,
    save_outcomes,
)


def test_a_run_round_trips_through_the_file_format(tmp_path: Path) -> None:
    rows = [row(0, (0.0, failing_run(2, 0.001)), (1.0, smooth_run(3, 0.01)))]
    table = load_outcomes(write(tmp_path / "a.jsonl", rows))
    run = table[0].outcomes["w"].run
    assert run is not None
    assert [m.role for m in run.chat] == ["assistant", "tool", "assistant", "tool", "assistant"]
    assert run.steps == (0, 2, 4)
    # is_error absent: read from the content, as the signals read a live tool result.
    assert run.chat[1].is_error is True
    save_outcomes(table, tmp_path / "b.jsonl.gz")
    again = load_outcomes(tmp_path / "b.jsonl.gz")
    assert again[0].outcomes["w"].run == run
    assert again[0].outcomes["s"].run == table[0].outcomes["s"].run


def test_single_turn_tables_stay_valid(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl"
    path.write_text(
        json.dumps({"id": "a", "task": "t", "prompt": "hi", "outcomes": {"m": {"score": 1}}}) + "\n"
    )
    assert load_outcomes(path)[0].outcomes["m"].run is None
    with pytest.raises(OutcomeTableError, match=r"plain.jsonl: holds no agent runs .* use `gearshift eval`"):
        load_agent_runs(path)


def _bad(tmp_path: Path, rows: list[dict[str, Any]]) -> str:
    with pytest.raises(OutcomeTableError) as info:
        load_agent_runs(write(tmp_path / "bad.jsonl", rows))
    return str(info.value)


def test_a_tool_result_for_an_unknown_call_names_file_line_and_field(tmp_path: Path) -> None:
    good = row(0, (1.0, smooth_run(2, 0.001)), (1.0, smooth_run(2, 0.01)))
    bad = row(1, (1.0, [assistant(0.001, "a#1"), tool("b#9", "ok")]), (1.0, smooth_run(2, 0.01)))
    message = _bad(tmp_path, [good, bad])
    assert "bad.jsonl line 2" in message
    assert "outcomes.w.messages[1].tool_call_id 'b#9' answers no earlier tool call" in message


def test_a_run_without_messages_is_refused(tmp_path: Path) -> None:
    rows = [row(0, (1.0, smooth_run(2, 0.001)), (1.0, smooth_run(2, 0.01)))]
    del rows[0]["outcomes"]["s"]["messages"]
    message = _bad(tmp_path, rows)
    assert "bad.jsonl line 1: outcomes.s.messages is missing" in message


def test_runs_that_do_not_cover_the_same_tasks_are_refused(tmp_path: Path) -> None:
    rows = [row(i, (1.0, smooth_run(2, 0.001)), (1.0, smooth_run(2, 0.01))) for i in range(3)]
    del rows[2]["outcomes"]["w"]
    message = _bad(tmp_path, rows)
    assert "bad.jsonl line 3: outcomes.w is missing: row 't2' has only s" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("role", "robot", "outcomes.w.messages[0].role must be one of assistant, tool, user, system"),
        (
            "usage",
            {"input_tokens": -1, "output_tokens": 2},
            "messages[0].usage.input_tokens must be a non-negative",
        ),
        ("cost_usd", "cheap", "messages[0].cost_usd must be a non-negative number"),
        ("colour", "red", "messages[0] has unknown field 'colour'"),
    ],
)
def test_bad_message_fields_are_named(tmp_path: Path, field: str, value: object, expected: str) -> None:
    rows = [row(0, (1.0, smooth_run(2, 0.001)), (1.0, smooth_run(2, 0.01)))]
    rows[0]["outcomes"]["w"]["messages"][0][field] = value
    message = _bad(tmp_path, rows)
    assert "bad.jsonl line 1: " in message
    assert expected in message


def test_missing_costs_are_estimated_and_counted(tmp_path: Path) -> None:
    runs = [smooth_run(3, 0.0), smooth_run(3, 0.0)]
    for messages in runs:
        for m in messages:
            m.pop("cost_usd", None)
    runs[1][0]["usage"] = {"input_tokens": 1000, "output_tokens": 100}
    rows = [row(0, (1.0, runs[0]), (1.0, runs[1]))]
    prices = {"w": ModelPrices(input=1.0, output=2.0), "s": ModelPrices(input=10.0, output=20.0)}
    agent = load_agent_runs(write(tmp_path / "est.jsonl", rows), prices=prices)
    assert "cost estimated from text for 2 runs" in agent.notes[0]
    assert "run cost is the sum of its steps for 2 runs" in agent.notes[-1]
    strong = agent.tasks[0].strong
    # The first strong step was priced from its usage: 1000 x $10/M + 100 x $20/M.
    assert strong.step_costs[0] == pytest.approx(0.012)
    assert strong.cost_usd == pytest.approx(sum(strong.step_costs))


def test_a_step_without_cost_and_an_unknown_price_is_an_error(tmp_path: Path) -> None:
    messages = smooth_run(2, 0.0)
    messages[0].pop("cost_usd")
    rows = [row(0, (1.0, messages), (1.0, smooth_run(2, 0.01)))]
    message = _bad(tmp_path, rows)
    assert (
        "bad.jsonl line 1: outcomes.w.messages[0] has no cost_usd, and no list price is known for 'w'"
        in message
    )


def test_the_cheap_model_is_the_cheaper_one(tmp_path: Path) -> None:
    rows = [row(0, (0.0, failing_run(1, 0.5)), (1.0, smooth_run(2, 0.01)))]
    agent = load_agent_runs(write(tmp_path / "swap.jsonl", rows))
    assert (agent.weak, agent.strong) == ("s", "w")
    assert agent.tasks[0].weak.cost_usd == pytest.approx(0.02)
    assert PROMPT[1]["content"] in agent.tasks[0].prompt[1].text


def test_the_bundled_tau_retail_runs_load_with_the_stated_counts() -> None:
    agent = load_tau_retail()
    assert (agent.weak, agent.strong, len(agent)) == ("gpt-4o-mini", "gpt-4o", 115)
    assert sum(t.weak.score for t in agent.tasks) == 49
    assert sum(t.strong.score for t in agent.tasks) == 72
    assert sum(len(t.weak.step_costs) for t in agent.tasks) == 1877  # every assistant turn
    errors = sum(m.is_error for t in agent.tasks for m in t.weak.run.chat if m.role == "tool")
    assert errors == 94
    assert "for all 230 runs" in agent.notes[0]
    assert "its own simulated user" in agent.notes[0]
    weak_mean = sum(t.weak.cost_usd for t in agent.tasks) / 115
    strong_mean = sum(t.strong.cost_usd for t in agent.tasks) / 115
    assert 0.005 < weak_mean < 0.015
    assert 0.05 < strong_mean < 0.2


def test_the_bundled_files_are_the_source_files_gzipped() -> None:
    folder = resources.files("gearshift.datasets").joinpath("tau_bench_retail")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "LICENSE",
        "PROVENANCE.md",
        "tool-calling-gpt-4o-0.0_range_0--1_user-gpt-4o-llm_1102193240.json.gz",
        "tool-calling-gpt-4o-mini-0.0_range_0--1_user-gpt-4o-mini-llm_1102182420.json.gz",
    ]
    for name in names[2:]:
        records = json.loads(gzip.decompress(folder.joinpath(name).read_bytes()))
        assert len(records) == 115
    assert folder.joinpath("LICENSE").read_text().startswith("MIT License")


def test_the_pinned_prices_are_genai_prices_list_prices() -> None:
    for model, prices in TAU_RETAIL_PRICES.items():
        listed = lookup_prices("openai", model)
        assert listed is not None
        assert (listed.input, listed.output) == (prices.input, prices.output)


def test_a_recorded_run_cost_is_split_over_steps_when_no_price_is_known(tmp_path: Path) -> None:
    messages = smooth_run(2, 0.0)
    for m in messages:
        m.pop("cost_usd", None)
    rows = [row(0, (1.0, messages), (1.0, smooth_run(2, 0.05)))]
    rows[0]["outcomes"]["w"]["cost_usd"] = 0.004
    agent = load_agent_runs(write(tmp_path / "split.jsonl", rows))
    weak = agent.tasks[0].weak
    assert sum(weak.step_costs) == pytest.approx(0.004)
    assert all(cost > 0 for cost in weak.step_costs)
    assert any("split from the recorded run cost for 1 runs" in note for note in agent.notes)


def test_tool_calls_may_use_the_openai_spelling(tmp_path: Path) -> None:
    messages = smooth_run(2, 0.001)
    call = messages[0]["tool_calls"][0]
    messages[0]["tool_calls"] = [
        {"id": call["id"], "type": "function", "function": {"name": "lookup", "arguments": call["arguments"]}}
    ]
    rows = [row(0, (1.0, messages), (1.0, smooth_run(2, 0.01)))]
    run = load_agent_runs(write(tmp_path / "openai.jsonl", rows)).tasks[0].weak.run
    assert run.chat[0].tool_calls[0].name == "lookup"


def test_a_run_without_steps_is_kept_as_it_is(tmp_path: Path) -> None:
    rows = [row(0, (0.0, []), (1.0, smooth_run(2, 0.01)))]
    rows[0]["outcomes"]["w"]["cost_usd"] = 0.0
    agent = load_agent_runs(write(tmp_path / "empty.jsonl", rows))
    assert agent.tasks[0].weak.step_costs == ()


def _three_models(tmp_path: Path, *, costs: bool = True) -> Path:
    """Two tasks run by a cheap 'w', a middling 'm' and a strong 's' (success 0, 1/2 and 1)."""
    rows = []
    for task in range(2):
        base = row(task, (0.0, failing_run(1, 0.01)), (1.0, smooth_run(2, 0.2)))
        base["outcomes"]["m"] = {"score": float(task), "messages": smooth_run(2, 0.05)}
        if costs:
            for model, cost in (("w", 0.02), ("m", 0.1), ("s", 0.4)):
                base["outcomes"][model]["cost_usd"] = cost
        rows.append(base)
    return write(tmp_path / "three.jsonl", rows)


def test_of_several_models_the_cheapest_meets_the_most_successful(tmp_path: Path) -> None:
    agent = load_agent_runs(_three_models(tmp_path))
    assert (agent.weak, agent.strong) == ("w", "s")
    assert [t.strong.score for t in agent.tasks] == [1.0, 1.0]
    assert any("holds 3 models" in note and "compared 'w' with 's'" in note for note in agent.notes)


def test_the_pair_can_be_named_among_several_models(tmp_path: Path) -> None:
    agent = load_agent_runs(_three_models(tmp_path), weak="m", strong="s")
    assert (agent.weak, agent.strong) == ("m", "s")
    assert [t.weak.score for t in agent.tasks] == [0.0, 1.0]
    agent = load_agent_runs(_three_models(tmp_path), strong="m")
    assert (agent.weak, agent.strong) == ("w", "m")


def test_several_models_without_recorded_costs_ask_for_the_pair(tmp_path: Path) -> None:
    with pytest.raises(OutcomeTableError, match="name the pair"):
        load_agent_runs(_three_models(tmp_path, costs=False))
