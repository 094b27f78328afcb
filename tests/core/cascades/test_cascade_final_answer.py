"""Reading conclusions out of answers, and telling whether two answers agree."""

from __future__ import annotations

import pytest

from gearshift.cascades import FinalAnswer, final_answer, same_answer
from gearshift.cascades._final_answer import token_similarity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9 * 2 = 18.\n#### 18", FinalAnswer("number", "18", True)),
        ("#### $1,250.00", FinalAnswer("number", "1250", True)),
        ("so x = 3 and \\boxed{-0.50}", FinalAnswer("number", "-0.5", True)),
        ("Step 1: 5 apples. The answer is 100 apples.", FinalAnswer("number", "100", True)),
        ("Answer: (B) Jupiter", FinalAnswer("choice", "B", True)),
        ("The correct answer is C.", FinalAnswer("choice", "C", True)),
        ("Answer: I think it is Paris", FinalAnswer("text", "i think it is paris", True)),
        ("c", FinalAnswer("choice", "C")),
        (" 42. ", FinalAnswer("number", "42")),
        ('```json\n{"a": [1, 2]}\n```', FinalAnswer("json", {"a": [1, 2]})),
        ("Paris, of course!", FinalAnswer("text", "paris of course")),
    ],
)
def test_final_answers(text: str, expected: FinalAnswer) -> None:
    assert final_answer(text) == expected


def test_the_last_marker_wins_and_empty_text_has_none() -> None:
    assert final_answer("the answer is 3... wait, recomputing.\nThe answer is 4") == FinalAnswer(
        "number", "4", True
    )
    assert final_answer("   ") is None


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("#### 18", "She makes $18.00 every day.\n#### 18", True),
        ("#### 18", "So she makes 18 dollars a day.", True),  # the other side forgot the marker
        ("#### 18", "#### 20", False),
        ("Answer: B", "b", True),
        ("Answer: B", "Answer: C", False),
        ('{"x": 1, "y": [2]}', '{"y": [2], "x": 1}', True),
        ('{"x": 1}', '{"x": 2}', False),
        ("Paris is the capital of France.", "The capital of France is Paris.", True),
        ("Paris is the capital of France.", "Lyon, a city in the south, is larger.", False),
        ("", "", True),
        ("", "42", False),
    ],
)
def test_same_answer(a: str, b: str, same: bool) -> None:
    assert same_answer(a, b) is same
    assert same_answer(b, a) is same


def test_token_similarity_is_a_jaccard_of_word_sets() -> None:
    assert token_similarity("a b c", "b c d") == pytest.approx(2 / 4)
    assert token_similarity("", "") == 1.0
    assert token_similarity("A, b!", "b a") == 1.0
