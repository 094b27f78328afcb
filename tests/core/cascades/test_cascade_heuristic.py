"""The heuristic gate: each check on its own, then the gate that runs them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gearshift._messages import ChatRequest, Message, ToolCall, ToolSpec
from gearshift.cascades import (
    DEFAULT_CHECKS,
    AnswerCheck,
    FinalAnswerCheck,
    HeuristicGate,
    check_arithmetic,
    check_empty,
    check_hedging,
    check_json_schema,
    check_refusal,
    check_tool_calls,
)

MakeCheck = Callable[..., AnswerCheck]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}
SEARCH = ToolSpec(
    name="search",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


def _json_request() -> ChatRequest:
    return ChatRequest(messages=(Message.user("Who is Ada?"),), response_schema=PERSON)


def _tool_request(choice: str | None = None) -> ChatRequest:
    return ChatRequest(messages=(Message.user("Find Ada."),), tools=(SEARCH,), tool_choice=choice)


@pytest.mark.parametrize(
    ("text", "calls", "empty"),
    [("", (), True), (" \n\t", (), True), ("42", (), False), ("", (ToolCall("c1", "search", "{}"),), False)],
)
def test_empty_answer(make_check: MakeCheck, text: str, calls: tuple[ToolCall, ...], empty: bool) -> None:
    check = make_check(text, tool_calls=calls)
    assert (check_empty(check.request, check.response) == "the answer is empty") is empty


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I’m sorry, but I can’t assist with this request.",
        "I am sorry, but I cannot do that.",
        "As an AI language model, I cannot provide medical advice.",
        "I must decline to answer.",
        "I'm unable to help with that request.",
    ],
)
def test_refusals_are_caught(make_check: MakeCheck, text: str) -> None:
    check = make_check(text)
    reason = check_refusal(check.request, check.response)
    assert reason is not None and reason.startswith("the model refused")


@pytest.mark.parametrize(
    "text",
    [
        "6 times 7 is 42.",
        "I can't believe how simple this is: 42.",
        "Step one " * 60 + "... and no, I can't help with that other thing.",  # deep inside a long answer
    ],
)
def test_answers_that_merely_contain_the_words_are_not_refusals(make_check: MakeCheck, text: str) -> None:
    check = make_check(text)
    assert check_refusal(check.request, check.response) is None


@pytest.mark.parametrize(
    ("text", "hedges"),
    [
        ("I'm not sure, but it might be 42.", True),
        ("It is 42, though I am not certain.", True),
        ("I don’t know.", True),
        ("I can't be sure without more data.", True),
        ("It is 42. You are sure to like it.", False),
        ("Nobody knows who built it, but it is 42 m tall.", False),
    ],
)
def test_hedging(make_check: MakeCheck, text: str, hedges: bool) -> None:
    check = make_check(text)
    reason = check_hedging(check.request, check.response)
    assert (reason is not None) is hedges
    if hedges:
        assert reason is not None and reason.startswith("the model is not sure of its answer")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n#### 18", True),
        ("So the answer is $1,250.", True),
        ("Final answer: \\boxed{-3.5}", True),
        ("She makes 9 * 2 = <<9*2=18", False),  # cut off before its conclusion
        ("The answer is unclear.", False),
        ("", False),
    ],
)
def test_a_final_number_must_be_marked(make_check: MakeCheck, text: str, ok: bool) -> None:
    check = make_check(text)
    reason = FinalAnswerCheck("number")(check.request, check.response)
    assert (reason is None) is ok
    if not ok:
        assert reason is not None and "no final number" in reason


@pytest.mark.parametrize(
    ("text", "ok"),
    [("B", True), ("(c)", True), ("Answer: D. Jupiter", True), ("The answer is 42", False), ("Mars", False)],
)
def test_a_final_choice_must_be_marked(make_check: MakeCheck, text: str, ok: bool) -> None:
    check = make_check(text)
    assert (FinalAnswerCheck("choice")(check.request, check.response) is None) is ok


def test_a_final_answer_pattern_and_tool_calls(make_check: MakeCheck) -> None:
    pattern = FinalAnswerCheck(pattern=r"RESULT: \w+")
    assert pattern(*_pair(make_check("RESULT: done"))) is None
    reason = pattern(*_pair(make_check("done")))
    assert reason is not None and "RESULT" in reason
    calling = make_check("", tool_calls=(ToolCall("c1", "search", '{"query": "x"}'),))
    assert FinalAnswerCheck("number")(*_pair(calling)) is None  # a tool call is a step, not a conclusion
    with pytest.raises(ValueError, match="kind"):
        FinalAnswerCheck("word")  # type: ignore[arg-type]


def _pair(check: object) -> tuple[ChatRequest, object]:
    return check.request, check.response  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "Ada", "age": 36}', None),
        ('```json\n{"name": "Ada", "age": 36}\n```', None),
        ('Sure! {"name": "Ada", "age": 36}', "the answer is not the JSON the request asked for"),
        (
            '{"name": "Ada", "age": "36"}',
            "does not match the requested schema: at $.age: '36' is not of type",
        ),
        ('{"name": "Ada"}', "at the top level: 'age' is a required property"),
        ('{"name": "Ada", "age": -1}', "at $.age: -1 is less than the minimum of 0"),
    ],
)
def test_json_answers_are_held_to_the_requested_schema(
    make_check: MakeCheck, text: str, expected: str | None
) -> None:
    check = make_check(text, request=_json_request())
    reason = check_json_schema(check.request, check.response)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_json_check_needs_a_schema_and_a_valid_one(make_check: MakeCheck) -> None:
    plain = make_check("not json at all")
    assert check_json_schema(plain.request, plain.response) is None  # nothing was asked for
    broken = ChatRequest(messages=(Message.user("x"),), response_schema={"type": "no-such-type"})
    check = make_check('{"a": 1}', request=broken)
    assert (
        check_json_schema(check.request, check.response) is None
    )  # a broken schema is not the answer's fault


@pytest.mark.parametrize(
    ("calls", "choice", "expected"),
    [
        ((ToolCall("c1", "search", '{"query": "Ada"}'),), None, None),
        ((), None, None),
        ((ToolCall("c1", "fetch", "{}"),), None, "names a tool the request did not offer (offered: search)"),
        ((ToolCall("c1", "search", "{query: Ada}"),), None, "arguments are not valid JSON"),
        ((ToolCall("c1", "search", '["Ada"]'),), None, "arguments must be a JSON object"),
        ((ToolCall("c1", "search", '{"query": 7}'),), None, "do not match the tool's schema: at $.query: 7"),
        ((ToolCall("c1", "search", "{}"),), None, "'query' is a required property"),
        ((), "required", "the request required a tool call and the answer made none"),
        ((), "search", "the request required a call to tool 'search'"),
    ],
)
def test_tool_calls_must_be_usable(
    make_check: MakeCheck, calls: tuple[ToolCall, ...], choice: str | None, expected: str | None
) -> None:
    check = make_check("I will look." if not calls else "", request=_tool_request(choice), tool_calls=calls)
    reason = check_tool_calls(check.request, check.response)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_a_tool_call_without_offered_tools_is_refused(make_check: MakeCheck) -> None:
    check = make_check("", tool_calls=(ToolCall("c1", "search", "{}"),))
    reason = check_tool_calls(check.request, check.response)
    assert reason == "tool call 'search' names a tool the request did not offer (offered: none)"


async def test_the_gate_rejects_with_the_first_failing_check(make_check: MakeCheck) -> None:
    gate = HeuristicGate()
    assert gate.checks == DEFAULT_CHECKS
    check = make_check("I'm sorry, but I can't help with that. I don't know.")
    verdict = await gate.check(check)
    assert not verdict.accept
    assert verdict.gate == "heuristic"
    assert verdict.reason.startswith("the model refused")
    assert verdict.confidence is None
    assert gate.problems(check.request, check.response) == [
        "the model refused (\"I'm sorry, but I can't\")",
        'the model is not sure of its answer ("I don\'t know")',
    ]


async def test_the_gate_accepts_a_good_answer_and_runs_only_its_checks(make_check: MakeCheck) -> None:
    good = await HeuristicGate().check(make_check("6 times 7 is 42."))
    assert good.accept and good.gate == "heuristic" and good.reason == ""
    strict = HeuristicGate([*DEFAULT_CHECKS, FinalAnswerCheck("number")])
    rejected = await strict.check(make_check("6 times 7 is 42."))
    assert not rejected.accept and "no final number" in rejected.reason
    lenient = HeuristicGate([check_empty])
    assert (await lenient.check(make_check("I don't know."))).accept


async def test_the_gate_checks_json_and_tool_answers(make_check: MakeCheck) -> None:
    gate = HeuristicGate()
    bad_json = await gate.check(make_check('{"name": 1, "age": 2}', request=_json_request()))
    assert not bad_json.accept and "$.name" in bad_json.reason
    bad_call = make_check("", request=_tool_request(), tool_calls=(ToolCall("c1", "search", '{"q": 1}'),))
    verdict = await gate.check(bad_call)
    assert not verdict.accept and "'query' is a required property" in verdict.reason


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("15 + 25 = 40 cups, then 60 - 40 = 20 cups.", None),
        ("15 + 25 = 45 cups in all.", "15 + 25 = 45 (it is 40)"),
        ("He runs 3 x 60 = <<3*60=180>>180 meters.", None),
        ("He runs 3 x 60 = <<3*60=170>>170 meters.", "3*60 = 170 (it is 180)"),
        ("22 + 4 x 12 = 22 + 48 = 70", None),  # a chain: each "=" compares with what follows it
        ("22 + 4 x 12 = 22 + 48 = 71", "22 + 48 = 71 (it is 70)"),
        ("10 / 3 = 3.33 each; $1,200 * 3 = $3,600", None),  # rounding and money
        ("17 \\* 4 = 68 beads", None),  # markdown-escaped sign
        ("x = 5 and 2x + 1 = 11, so 20% of 50 = 10", None),  # nothing plain to work out
        ("Divide: 5 / 0 = 0", None),
    ],
)
def test_arithmetic_is_checked(make_check: MakeCheck, text: str, wrong: str | None) -> None:
    check = make_check(text)
    reason = check_arithmetic(check.request, check.response)
    if wrong is None:
        assert reason is None
    else:
        assert reason == f"the answer's arithmetic is wrong: {wrong}"


def test_every_wrong_equation_is_counted(make_check: MakeCheck) -> None:
    check = make_check("2 + 2 = 5 and 3 * 3 = 10 and 1 + 1 = 2")
    assert check_arithmetic(check.request, check.response) == (
        "the answer's arithmetic is wrong: 2 + 2 = 5 (it is 4) (and 1 more)"
    )


def test_an_answer_that_calls_a_tool_is_not_held_to_hedging_or_refusal(make_check: MakeCheck) -> None:
    call = (ToolCall("c1", "search", '{"query": "Ada"}'),)
    check = make_check(
        "I don't know when Ada was born; I can't help with that without searching.", tool_calls=call
    )
    assert check_hedging(check.request, check.response) is None
    assert check_refusal(check.request, check.response) is None


async def test_an_agent_step_that_calls_a_tool_is_not_held_to_the_final_answers_schema(
    make_check: MakeCheck,
) -> None:
    # An agent asked for a structured final answer (LangChain's create_agent(response_format=...))
    # sends the schema with its tools on every step; a step that calls a tool has no answer yet.
    request = ChatRequest(messages=(Message.user("Who is Ada?"),), tools=(SEARCH,), response_schema=PERSON)
    step = make_check("", request=request, tool_calls=(ToolCall("c1", "search", '{"query": "Ada"}'),))
    assert check_json_schema(step.request, step.response) is None
    assert (await HeuristicGate().check(step)).accept
    final = make_check("Ada Lovelace, 36.", request=request)
    assert "not the JSON the request asked for" in (check_json_schema(final.request, final.response) or "")
