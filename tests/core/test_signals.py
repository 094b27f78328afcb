import dataclasses
import json

import pytest

from gearshift._context import StepContext, StepType, ToolRecord
from gearshift._messages import ChatRequest, ImagePart, Message, TextPart, ToolCall, ToolSpec
from gearshift.signals._signals import TASKS, Signals, extract_signals
from gearshift.signals._tokens import estimate_request_tokens, estimate_tokens

HARD_CODE = """My worker pool deadlocks under load:
```python
import asyncio

async def worker(q):
    while True:
        item = await q.get()
        if item is None:
            break
        await process(item)
```
Traceback (most recent call last):
  File "w.py", line 9, in worker
RuntimeError: Task got Future attached to a different loop
Why does this happen? Find the root cause and rewrite it so it must not deadlock."""


def signals(*messages: Message, context: StepContext | None = None, **request: object) -> Signals:
    return extract_signals(ChatRequest(messages=messages, **request), context or StepContext())  # type: ignore[arg-type]


def ask(text: str) -> Signals:
    return signals(Message.user(text))


def tools(count: int) -> tuple[ToolSpec, ...]:
    schema = {"type": "object", "properties": {"path": {"type": "string", "description": "x " * 40}}}
    return tuple(
        ToolSpec(name=f"tool_{i}", description="Reads part of the repository. " * 10, parameters=schema)
        for i in range(count)
    )


def call(call_id: str, name: str, arguments: str) -> Message:
    return Message.assistant("", [ToolCall(call_id, name, arguments)])


def test_a_greeting_has_no_markers() -> None:
    s = ask("hi there! how are you?")
    assert (s.code, s.math, s.reasoning) == (0.0, 0.0, 0.0)
    assert s.task == "chat"
    assert (s.turns, s.run_depth, s.consecutive_tool_errors, s.repeated_tool_calls) == (1, 0, 0, 0)
    assert (s.has_tools, s.needs_json, s.has_images) == (False, False, False)


def test_prompt_tokens_count_every_message_and_leave_tool_schemas_out() -> None:
    messages = (
        Message.system("Be brief."),
        Message.user("What is a monad?"),
        Message.assistant("A burrito."),
    )
    bare = signals(*messages)
    with_tools = signals(*messages, tools=tools(20))
    assert bare.prompt_tokens == with_tools.prompt_tokens
    assert bare.prompt_tokens == estimate_request_tokens(ChatRequest(messages=messages))
    assert estimate_request_tokens(ChatRequest(messages=messages, tools=tools(20))) > 2 * bare.prompt_tokens
    assert (with_tools.has_tools, bare.has_tools) == (True, False)


def test_token_counts_include_images_and_tool_calls_like_the_request_estimate() -> None:
    messages = (
        Message.user([TextPart("What is in this picture?"), ImagePart(url="https://x/cat.png")]),
        call("c1", "describe", '{"detail": "high"}'),
        Message.tool("c1", "a cat on a mat"),
    )
    s = signals(*messages)
    assert s.prompt_tokens == estimate_request_tokens(ChatRequest(messages=messages))
    assert s.last_user_tokens == estimate_tokens("What is in this picture?")
    assert s.has_images


def test_turns_count_user_messages_and_last_user_tokens_read_the_latest() -> None:
    s = signals(
        Message.user("first question " * 30),
        Message.assistant("answer"),
        Message.user("and a short follow-up"),
    )
    assert s.turns == 2
    assert s.last_user_tokens == estimate_tokens("and a short follow-up")


def test_tool_choice_none_means_no_tools() -> None:
    assert not signals(Message.user("hi"), tools=tools(2), tool_choice="none").has_tools


@pytest.mark.parametrize(
    "prompt",
    [
        HARD_CODE,
        "Review this patch:\ndiff --git a/app.py b/app.py\n@@ -1,2 +1,3 @@\n+import os\n def main():",
        "```js\nconst add = (a, b) => a + b;\nconsole.log(add(1, 2));\n```",
        "Write a Python function that removes duplicates from a list.",
    ],
)
def test_code_markers(prompt: str) -> None:
    s = ask(prompt)
    assert s.code >= 0.5
    assert s.task == "code"


@pytest.mark.parametrize(
    "prompt",
    [
        "Tell me about the history of Rome (briefly) and its emperors.",
        "The meeting is on 2024-01-15; bring the 3 reports and the budget.",
        "What's a good name for a golden retriever puppy?",
    ],
)
def test_prose_is_not_code_or_math(prompt: str) -> None:
    s = ask(prompt)
    assert s.code < 0.25
    assert s.math < 0.25


@pytest.mark.parametrize(
    "prompt",
    [
        r"Compute $\int_0^1 x^2 \, dx$ and simplify \frac{1}{3}.",
        "Solve for x: 3x + 7 = 22, then compute x^2 - 4.",
        "A shop sells 45 apples on Monday and 38 on Tuesday at $3 each. How much money did it make?",
    ],
)
def test_math_markers(prompt: str) -> None:
    s = ask(prompt)
    assert s.math >= 0.5
    assert s.task == "math"


def test_reasoning_markers_add_up() -> None:
    plain = ask("Tell me about caching.")
    why = ask("Why is caching hard?")
    deep = ask(
        "Compare write-through and write-back caching. What are the trade-offs? Which should we use, "
        "and why? Constraints:\n1. at most two nodes\n2. must survive a restart\n3. no more than 1 GB"
    )
    proof = ask("Prove step by step that the square root of 2 is irrational.")
    assert plain.reasoning == 0.0
    assert 0 < why.reasoning < deep.reasoning
    assert deep.reasoning >= 0.5
    assert deep.task == "reasoning"
    assert proof.reasoning >= 0.5


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Summarize the following article in three bullet points: the economy grew.", "summarize"),
        ("Translate into French: I would like two coffees, please.", "translate"),
        ("Extract every date and amount from this invoice: paid on March 3.", "extraction"),
        ("Classify the sentiment of this review: the food was cold.", "classification"),
        ("Write a haiku about autumn leaves.", "creative"),
        ("hello, how was your weekend?", "chat"),
    ],
)
def test_task_labels(prompt: str, task: str) -> None:
    assert task in TASKS
    assert ask(prompt).task == task


def test_an_instruction_verb_beats_math_words_inside_a_document() -> None:
    report = "Revenue rose 12 percent; the average ratio of sales to 4 + 5 stores. " * 30
    s = ask(f"Summarize this report:\n{report}")
    assert s.math > 0
    assert s.task == "summarize"


def test_reading_a_tool_result_is_tool_use() -> None:
    s = signals(Message.user("What's the weather in Oslo?"), call("c1", "weather", '{"city": "Oslo"}'))
    assert s.task != "tool_use"
    s = signals(
        Message.user("What's the weather in Oslo?"),
        call("c1", "weather", '{"city": "Oslo"}'),
        Message.tool("c1", "12 C, light rain"),
    )
    assert s.task == "tool_use"
    assert signals(Message.user("Look it up."), tools=tools(1), tool_choice="required").task == "tool_use"


def test_tool_errors_are_read_from_the_messages() -> None:
    history = [
        Message.user("Fix the build."),
        call("c1", "run", '{"cmd": "make"}'),
        Message.tool("c1", "ok: built in 3s"),
        call("c2", "run", '{"cmd": "make test"}'),
        Message.tool("c2", "3 tests failed", is_error=True),
        call("c3", "read", '{"path": "x.py"}'),
        Message.tool("c3", "Error: no such file x.py"),
    ]
    assert signals(*history).consecutive_tool_errors == 2
    assert signals(*history[:5]).consecutive_tool_errors == 1
    assert signals(*history[:3]).consecutive_tool_errors == 0


@pytest.mark.parametrize(
    ("result", "is_error"),
    [
        ('{"error": {"code": 404, "message": "not found"}}', True),
        ('{"status": "error", "detail": "timeout"}', True),
        ("Command finished with exit code 2", True),
        ("Traceback (most recent call last):\n  ...", True),
        ("PermissionError: [Errno 13]", True),
        ("Found 3 results about error handling in Go.", False),
        ('{"error": null, "items": []}', False),
        ("Command finished with exit code 0", False),
    ],
)
def test_error_looking_tool_results(result: str, is_error: bool) -> None:
    s = signals(Message.user("Go."), call("c1", "run", "{}"), Message.tool("c1", result))
    assert s.consecutive_tool_errors == int(is_error)


def test_a_new_user_message_resets_the_error_streak() -> None:
    s = signals(
        Message.user("Fix the build."),
        call("c1", "run", "{}"),
        Message.tool("c1", "boom", is_error=True),
        Message.user("Try something else."),
    )
    assert s.consecutive_tool_errors == 0


def test_an_answer_without_tool_calls_ends_the_error_streak() -> None:
    # A supervisor's next agent reads the previous agent's failed calls, then its answer.
    failed = (call("c1", "run", "{}"), Message.tool("c1", "boom", is_error=True))
    assert signals(Message.user("Go."), *failed, *failed).consecutive_tool_errors == 2
    answered = signals(Message.user("Go."), *failed, *failed, Message.assistant("It is down."))
    assert answered.consecutive_tool_errors == 0


def test_a_step_that_opens_its_agents_turn_makes_no_streak_of_the_results_before_it() -> None:
    # A LlamaIndex AgentWorkflow's next agent reads the handoff's results, a failed call among them.
    failed = (call("c1", "run", "{}"), Message.tool("c1", "boom", is_error=True))
    history = (ToolRecord("run", ok=False),)
    opening = StepContext(step_index=1, tool_history=history, turn_start=1, turn_step_index=0)
    assert signals(Message.user("Go."), *failed, context=opening).consecutive_tool_errors == 0
    assert signals(Message.user("Go."), *failed, *failed, context=opening).repeated_tool_calls == 0
    later = dataclasses.replace(opening, turn_step_index=1)
    assert signals(Message.user("Go."), *failed, context=later).consecutive_tool_errors == 1


def test_the_context_and_the_messages_are_combined_without_double_counting() -> None:
    history = (ToolRecord("run", ok=False), ToolRecord("run", ok=False), ToolRecord("run", ok=False))
    context = StepContext(tool_history=history)
    assert signals(Message.user("Go on."), context=context).consecutive_tool_errors == 3
    both = signals(
        Message.user("Go on."),
        call("c1", "run", "{}"),
        Message.tool("c1", "boom", is_error=True),
        context=context,
    )
    assert both.consecutive_tool_errors == 3


def test_repeated_identical_tool_calls_are_read_from_the_messages() -> None:
    same = ['{"path": "a.py", "line": 3}', '{"line":3,"path":"a.py"}', '{"path": "a.py", "line": 3}']
    history: list[Message] = [Message.user("Find the bug.")]
    for i, arguments in enumerate(same):
        history += [call(f"c{i}", "read", arguments), Message.tool(f"c{i}", "def f(): ...")]
    assert signals(*history).repeated_tool_calls == 2
    assert signals(*history[:3]).repeated_tool_calls == 0
    changed = [*history, call("c9", "read", '{"path": "b.py", "line": 3}')]
    assert signals(*changed).repeated_tool_calls == 0
    other_tool = [*history, call("c9", "grep", '{"path": "a.py", "line": 3}')]
    assert signals(*other_tool).repeated_tool_calls == 0


def test_a_text_answer_between_calls_breaks_the_repeat() -> None:
    s = signals(
        Message.user("Check it."),
        call("c1", "read", '{"path": "a.py"}'),
        Message.tool("c1", "..."),
        Message.assistant("Looks fine. Checking once more."),
        call("c2", "read", '{"path": "a.py"}'),
    )
    assert s.repeated_tool_calls == 0


def test_parallel_calls_repeat_as_a_whole() -> None:
    pair = [ToolCall("a", "search", '{"q": "x"}'), ToolCall("b", "search", '{"q": "y"}')]
    s = signals(
        Message.user("Research."),
        Message.assistant("", pair),
        Message.tool("a", "..."),
        Message.tool("b", "..."),
        Message.assistant("", pair),
    )
    assert s.repeated_tool_calls == 1


def test_repeats_from_the_context_count_too() -> None:
    history = tuple(ToolRecord("read", args_hash="h1") for _ in range(4))
    assert signals(Message.user("Go."), context=StepContext(tool_history=history)).repeated_tool_calls == 3


def test_run_depth_is_the_larger_of_step_index_and_assistant_turns_since_the_user() -> None:
    history = [Message.user("old"), Message.assistant("old answer"), Message.user("Fix it.")]
    for i in range(3):
        history += [call(f"c{i}", "run", json.dumps({"i": i})), Message.tool(f"c{i}", "done")]
    assert signals(*history).run_depth == 3
    assert signals(*history, context=StepContext(step_index=7)).run_depth == 7


def test_step_type_and_budget_come_from_the_context() -> None:
    s = signals(Message.user("Plan it."), context=StepContext(step_type=StepType.PLAN, budget_left_share=0.4))
    assert s.step_type is StepType.PLAN
    assert s.budget_left_share == 0.4
    assert signals(Message.user("x"), context=StepContext(budget_left_share=-0.5)).budget_left_share == 0.0
    assert signals(Message.user("x")).budget_left_share is None


@pytest.mark.parametrize(
    ("messages", "schema", "needs_json"),
    [
        ((Message.user("List three colours."),), {"type": "object"}, True),
        ((Message.user("List three colours. Respond in JSON only."),), None, True),
        (
            (Message.system("Always answer with a JSON object."), Message.user("List three colours.")),
            None,
            True,
        ),
        ((Message.user("What is JSON, in one sentence?"),), None, False),
    ],
)
def test_needs_json(messages: tuple[Message, ...], schema: dict[str, str] | None, needs_json: bool) -> None:
    assert signals(*messages, response_schema=schema).needs_json is needs_json


def test_content_features_only_read_the_recent_part_of_a_long_conversation() -> None:
    old_code = Message.user(HARD_CODE)
    chatter = [Message.assistant("Sure."), Message.user("ok"), Message.assistant("Anything else?")] * 3
    s = signals(old_code, *chatter, Message.user("thanks, bye!"))
    assert s.code == 0.0
    assert s.prompt_tokens > estimate_tokens(HARD_CODE)  # the size still counts every message


def test_a_long_prompt_is_read_by_its_head_and_tail() -> None:
    filler = "The committee met and discussed the agenda at length. " * 2_000
    s = ask(f"Summarize the minutes below.\n{filler}\nThen say why the vote failed, step by step.")
    assert s.task == "summarize"
    assert s.reasoning >= 0.3
    assert s.prompt_tokens > 20_000


def test_signals_are_frozen() -> None:
    s = ask("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.code = 1.0  # type: ignore[misc]
