"""Outcome tables: values, lookups, splits, and the JSONL file format with its error messages."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from gearshift import _errors
from gearshift._messages import ImagePart, Message, TextPart
from gearshift.datasets import (
    Outcome,
    OutcomeRow,
    OutcomeTable,
    OutcomeTableError,
    load_outcomes,
    save_outcomes,
)


def _row(row_id: str, prompt: str | tuple[Message, ...] = "", task: str = "t", **scores: float) -> OutcomeRow:
    outcomes = {model: Outcome(score) for model, score in (scores or {"a": 1.0}).items()}
    return OutcomeRow(row_id, task, prompt or f"prompt of {row_id}", outcomes)


def _table(n: int) -> OutcomeTable:
    return OutcomeTable(_row(f"r{i}") for i in range(n))


# -- values -----------------------------------------------------------------------------------------


def test_outcome_keeps_floats_and_optional_fields() -> None:
    outcome = Outcome(1, cost_usd=0, input_tokens=3, output_tokens=0, response="")
    assert outcome.score == 1.0
    assert isinstance(outcome.score, float)
    assert outcome.cost_usd == 0.0
    assert isinstance(outcome.cost_usd, float)
    assert Outcome(0.5).cost_usd is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": 1.5}, "Outcome.score must be a number in [0, 1], got 1.5"),
        ({"score": math.nan}, "Outcome.score must be a number in [0, 1]"),
        ({"score": True}, "Outcome.score must be a number in [0, 1], got True"),
        ({"score": 1, "cost_usd": -0.01}, "Outcome.cost_usd must be a non-negative number"),
        ({"score": 1, "cost_usd": math.inf}, "Outcome.cost_usd must be a non-negative number"),
        ({"score": 1, "input_tokens": 2.5}, "Outcome.input_tokens must be a non-negative integer"),
        ({"score": 1, "output_tokens": -1}, "Outcome.output_tokens must be a non-negative integer"),
        ({"score": 1, "response": 3}, "Outcome.response must be a string or null, got int"),
    ],
)
def test_outcome_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OutcomeTableError) as info:
        Outcome(**kwargs)
    assert str(info.value).startswith(message)


def test_outcome_table_error_is_a_gearshift_value_error() -> None:
    error = OutcomeTableError("score is wrong", path="data/out.jsonl", line=3)
    assert isinstance(error, _errors.GearshiftError)
    assert isinstance(error, ValueError)
    assert str(error) == "data/out.jsonl line 3: score is wrong"
    assert (error.path, error.line) == ("data/out.jsonl", 3)


def test_row_with_a_conversation_prompt() -> None:
    conversation = (
        Message.system("Be brief."),
        Message.user("Hi"),
        Message.assistant("Hello"),
        Message.user("2+2?"),
    )
    row = OutcomeRow("c1", "chat", list(conversation), {"a": Outcome(1.0)})  # type: ignore[arg-type]
    assert row.prompt == conversation  # a list is frozen into a tuple
    assert row.prompt_text == "Hi\n\n2+2?"
    assert row.as_messages() == conversation
    assert _row("s1", "What is 2+2?").as_messages() == (Message.user("What is 2+2?"),)


def test_row_copies_its_outcomes() -> None:
    outcomes = {"a": Outcome(1.0)}
    row = OutcomeRow("r", "t", "p", outcomes)
    outcomes["b"] = Outcome(0.0)
    assert list(row.outcomes) == ["a"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "t", "p", {"a": Outcome(1)}), "OutcomeRow.id must be a non-empty string"),
        (("r", "", "p", {"a": Outcome(1)}), "row 'r': task must be a non-empty string"),
        (("r", "t", "  ", {"a": Outcome(1)}), "row 'r': prompt is empty"),
        (
            ("r", "t", (Message.system("s"),), {"a": Outcome(1)}),
            "row 'r': the prompt conversation has no user",
        ),
        (("r", "t", (Message.tool("c1", "x"),), {"a": Outcome(1)}), "row 'r': prompt[0] must be a Message"),
        (("r", "t", "p", {}), "row 'r': outcomes must name at least one model"),
        (("r", "t", "p", {"a": 1.0}), "row 'r': outcomes['a'] must be an Outcome"),
    ],
)
def test_row_rejects_bad_values(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(OutcomeTableError, match=message.replace("[", r"\[")):
        OutcomeRow(*args)


# -- the table --------------------------------------------------------------------------------------


def test_table_models_and_tasks_in_order_of_first_appearance() -> None:
    table = OutcomeTable(
        [_row("1", task="math", b=1, a=0), _row("2", task="code", c=1, a=1), _row("3", task="math")]
    )
    assert table.models == ("b", "a", "c")
    assert table.tasks == ("math", "code")
    assert len(table) == 3
    assert [row.id for row in table] == ["1", "2", "3"]
    assert table[1].id == "2"
    assert table[-1].id == "3"
    assert table.rows == tuple(table)
    assert "3 rows" in repr(table)


def test_table_refuses_duplicate_ids() -> None:
    with pytest.raises(OutcomeTableError, match="row id 'x' is used by rows 0 and 2"):
        OutcomeTable([_row("x"), _row("y"), _row("x")])


def test_by_prompt_ignores_whitespace_and_first_row_wins() -> None:
    table = OutcomeTable(
        [
            _row("1", "What  is\n2+2?\n"),
            _row("2", "What is 2+2?"),
            _row("3", (Message.system("s"), Message.user("Hi"), Message.user("there"))),
        ]
    )
    found = table.by_prompt(" What is 2+2? ")
    assert found is not None
    assert found.id == "1"
    conversation = table.by_prompt("Hi\n\nthere")
    assert conversation is not None
    assert conversation.id == "3"
    assert table.by_prompt("What is 3+3?") is None


def test_mean_score_skips_rows_without_the_model() -> None:
    table = OutcomeTable([_row("1", a=1.0, b=0.0), _row("2", a=0.5), _row("3", a=0.0, b=1.0)])
    assert table.mean_score("a") == pytest.approx(0.5)
    assert table.mean_score("b") == pytest.approx(0.5)
    with pytest.raises(KeyError, match="no row has an outcome for model 'c'"):
        table.mean_score("c")


def test_filter_and_subset_return_new_tables() -> None:
    table = OutcomeTable([_row("1", task="math"), _row("2", task="code"), _row("3", task="math")])
    math_rows = table.filter(lambda row: row.task == "math")
    assert [row.id for row in math_rows] == ["1", "3"]
    assert math_rows.tasks == ("math",)
    assert [row.id for row in table.subset([2, 0])] == ["3", "1"]
    assert len(table.filter(lambda row: False)) == 0
    assert len(table) == 3


def test_with_models_keeps_only_their_outcomes_and_drops_rows_left_empty() -> None:
    table = OutcomeTable([_row("1", a=1.0, b=0.0), _row("2", b=1.0), _row("3", a=0.5, c=1.0)])
    kept = table.with_models(["a", "c"])
    assert [row.id for row in kept] == ["1", "3"] and kept.models == ("a", "c")
    assert dict(kept[0].outcomes) == {"a": Outcome(1.0)} and kept[1] is table[2]  # untouched rows shared
    assert table.models == ("a", "b", "c")  # the original is unchanged


def test_kfold_partitions_every_row_once_and_is_reproducible() -> None:
    table = _table(23)
    splits = table.kfold(5, seed=7)
    assert len(splits) == 5
    tested: list[str] = []
    for train, test in splits:
        train_ids, test_ids = [r.id for r in train], [r.id for r in test]
        assert not set(train_ids) & set(test_ids)
        assert len(train_ids) + len(test_ids) == 23
        assert len(test_ids) in (4, 5)
        order = [r.id for r in table]
        assert train_ids == sorted(train_ids, key=order.index)  # table order kept
        assert test_ids == sorted(test_ids, key=order.index)
        tested += test_ids
    assert sorted(tested) == sorted(r.id for r in table)
    same = table.kfold(5, seed=7)
    assert [[r.id for r in test] for _, test in same] == [[r.id for r in test] for _, test in splits]
    other = table.kfold(5, seed=8)
    assert [[r.id for r in test] for _, test in other] != [[r.id for r in test] for _, test in splits]


@pytest.mark.parametrize(
    ("k", "message"), [(1, "k >= 2"), (True, "k >= 2"), (6, "cannot make 6 folds from 5 rows")]
)
def test_kfold_rejects_impossible_k(k: int, message: str) -> None:
    with pytest.raises(OutcomeTableError, match=message):
        _table(5).kfold(k)


# -- files ------------------------------------------------------------------------------------------


def _full_table() -> OutcomeTable:
    return OutcomeTable(
        [
            OutcomeRow(
                "gsm8k-17",
                "gsm8k",
                "Janet’s ducks lay 16 eggs per day.\nHow much?",
                {
                    "model-a": Outcome(
                        1.0, cost_usd=0.0031, input_tokens=20, output_tokens=80, response="18"
                    ),
                    "model-b": Outcome(0.0, cost_usd=0.0002),
                },
            ),
            OutcomeRow(
                "chat-1",
                "chat",
                (
                    Message.system("Be brief."),
                    Message.user("Hi"),
                    Message.assistant("Hello!"),
                    Message.user("Bye"),
                ),
                {"model-b": Outcome(0.25)},
            ),
        ]
    )


@pytest.mark.parametrize("name", ["outcomes.jsonl", "outcomes.jsonl.gz"])
def test_save_then_load_round_trips(tmp_path: Path, name: str) -> None:
    table = _full_table()
    path = tmp_path / name
    save_outcomes(table, path)
    loaded = load_outcomes(path)
    assert loaded.rows == table.rows
    assert loaded.models == ("model-a", "model-b")


def test_saved_format_is_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    save_outcomes(_full_table(), path)
    first, second = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert first == {
        "id": "gsm8k-17",
        "task": "gsm8k",
        "prompt": "Janet’s ducks lay 16 eggs per day.\nHow much?",
        "outcomes": {
            "model-a": {
                "score": 1.0,
                "cost_usd": 0.0031,
                "input_tokens": 20,
                "output_tokens": 80,
                "response": "18",
            },
            "model-b": {"score": 0.0, "cost_usd": 0.0002},
        },
    }
    assert second["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert "’" in path.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes


def test_save_keeps_the_text_of_multi_part_messages(tmp_path: Path) -> None:
    message = Message.user([TextPart("Describe this"), ImagePart(url="https://example.com/a.png")])
    path = tmp_path / "o.jsonl"
    save_outcomes(OutcomeTable([OutcomeRow("r", "vision", (message,), {"a": Outcome(1.0)})]), path)
    assert load_outcomes(path)[0].prompt == (Message.user("Describe this"),)


def test_load_skips_blank_lines_and_accepts_integer_scores(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    line = {"id": "1", "task": "t", "prompt": "p", "outcomes": {"a": {"score": 1, "cost_usd": 0}}}
    path.write_text("\n" + json.dumps(line) + "\n\n", encoding="utf-8")
    outcome = load_outcomes(path)[0].outcomes["a"]
    assert outcome == Outcome(1.0, cost_usd=0.0)


_GOOD: dict[str, Any] = {"id": "r1", "task": "t", "prompt": "p", "outcomes": {"model-b": {"score": 0.5}}}


def _with(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(json.dumps(_GOOD))
    for key, value in changes.items():
        if value is ...:
            del row[key]
        else:
            row[key] = value
    return row


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "holds no rows"),
        (["", "  "], "holds no rows"),
        (["[1, 2]"], "line 1: each line must be a JSON object, got a list"),
        (["42"], "line 1: each line must be a JSON object, got 42"),
        (["{nope"], "line 1: not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        # A line cut short: where it ends, not column 1 of json's own next line.
        (['{"id": "a", "task": "t"'], "line 1: not valid JSON: Expecting ',' delimiter at column 24"),
        ([_with(id=...)], "line 1: missing field 'id'"),
        ([_with(task=...)], "line 1: missing field 'task'"),
        ([_with(prompt=...)], "line 1: missing field 'prompt'"),
        ([_with(outcomes=...)], "line 1: missing field 'outcomes'"),
        ([_with(extra=1)], "line 1: unknown field 'extra' (a row has id, task, prompt, outcomes)"),
        ([_with(id=7)], "line 1: id must be a non-empty string, got 7"),
        ([_with(task="")], "line 1: task must be a non-empty string, got ''"),
        ([_with(prompt="")], "line 1: prompt is empty"),
        (
            [_with(prompt=None)],
            "line 1: prompt must be a string or a non-empty list of {role, content} messages, got null",
        ),
        (
            [_with(prompt=[{"role": "bot", "content": "x"}])],
            "line 1: prompt[0].role must be one of system, user, assistant, got 'bot'",
        ),
        (
            [_with(prompt=[{"role": "user", "content": 3}])],
            "line 1: prompt[0].content must be a string, got 3",
        ),
        ([_with(prompt=[{"role": "user", "text": "x"}])], "line 1: prompt[0] has unknown field 'text'"),
        ([_with(prompt=[{"role": "system", "content": "x"}])], "line 1: prompt has no user message"),
        ([_with(outcomes={})], "line 1: outcomes must name at least one model, got {}"),
        (
            [_with(outcomes=[1])],
            "line 1: outcomes must be an object mapping model ids to outcomes, got a list",
        ),
        (
            [_with(outcomes={"model-b": 0.5})],
            "line 1: outcomes.model-b must be an object with at least a score, got 0.5",
        ),
        ([_with(outcomes={"model-b": {}})], "line 1: outcomes.model-b.score is missing"),
        (
            [_with(outcomes={"model-b": {"score": "abc"}})],
            "line 1: outcomes.model-b.score must be a number in [0, 1], got 'abc'",
        ),
        (
            [_with(outcomes={"model-b": {"score": 1.01}})],
            "line 1: outcomes.model-b.score must be a number in [0, 1], got 1.01",
        ),
        (
            [_with(outcomes={"model-b": {"score": 7}})],
            "line 1: outcomes.model-b.score must be a number in [0, 1], got 7 (a score on another scale, "
            "such as MT-Bench's 1 to 10, is divided by the top of that scale first)",
        ),
        (
            [_with(outcomes={"model-b": {"score": -0.5}})],
            "line 1: outcomes.model-b.score must be a number in [0, 1], got -0.5",
        ),
        (
            [_with(outcomes={"model-b": {"score": True}})],
            "line 1: outcomes.model-b.score must be a number in [0, 1], got True",
        ),
        (
            [_with(outcomes={"model-b": {"score": 1, "cost_usd": -1}})],
            "line 1: outcomes.model-b.cost_usd must be a non-negative number of dollars or null, got -1",
        ),
        (
            [_with(outcomes={"model-b": {"score": 1, "output_tokens": 1.5}})],
            "line 1: outcomes.model-b.output_tokens must be a non-negative integer or null, got 1.5",
        ),
        (
            [_with(outcomes={"model-b": {"score": 1, "scor": 1}})],
            "line 1: outcomes.model-b has unknown field 'scor'",
        ),
        ([_with(outcomes={"": {"score": 1}})], "line 1: outcomes has an empty model id"),
        ([_GOOD, "", _GOOD], "line 3: id 'r1' was already used on line 1"),
    ],
)
def test_load_reports_what_is_wrong_and_where(tmp_path: Path, lines: list[Any], message: str) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8"
    )
    with pytest.raises(OutcomeTableError) as info:
        load_outcomes(path)
    expected = f"{path} {message}" if message.startswith("line") else f"{path}: {message}"
    assert str(info.value).startswith(expected)


def test_load_reports_the_line_of_an_error_after_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    rows = [_with(id=f"r{i}") for i in range(16)] + [_with(id="r16", outcomes={"model-b": {"score": "abc"}})]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(OutcomeTableError) as info:
        load_outcomes(path)
    assert str(info.value) == f"{path} line 17: outcomes.model-b.score must be a number in [0, 1], got 'abc'"
    assert (info.value.line, info.value.path) == (17, str(path))


def test_load_reports_bad_bytes_and_bad_gzip(tmp_path: Path) -> None:
    text = tmp_path / "latin1.jsonl"
    text.write_bytes(json.dumps(_GOOD).encode() + b"\n" + b'{"id": "caf\xe9"}\n')
    with pytest.raises(OutcomeTableError, match=r"line 2: is not UTF-8 text"):
        load_outcomes(text)
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(b"not gzip at all")
    with pytest.raises(OutcomeTableError, match="is not a valid gzip file"):
        load_outcomes(fake)
    empty_gz = tmp_path / "empty.jsonl.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    with pytest.raises(OutcomeTableError, match="holds no rows"):
        load_outcomes(empty_gz)
