"""Token estimates and cue readings kept per text give the very numbers a fresh reading gives, step
after step of a run.

`_text_tokens` keeps the estimate of each text it has counted, so that an agent's history, sent again
whole on every step, is counted only for what is new; the signals keep what the user's request alone
decides (its cue counts and reasoning strength), as every step of a run ends on the same request.
Each step of each run below is sent the way a run sends it (the history so far, the earlier texts
already kept), and its signals and estimates are checked against the same call with nothing kept:
agent histories with tool errors and repeated calls, long (sampled) and non-ASCII texts, blank ones,
and the bundled tau-bench retail runs.
"""

from __future__ import annotations

import random

import pytest

from gearshift import ChatRequest, Message, StepContext, StepType, ToolCall
from gearshift import _text_tokens as text_tokens
from gearshift.datasets import load_tau_retail
from gearshift.signals import _signals as signals
from gearshift.signals._signals import extract_signals
from gearshift.signals._tokens import estimate_request_tokens, message_tokens, messages_tokens

_WORDS = ("build", "repository", "failed", "the", "path", "configuration", "x", "42", "ü", "数据", "é")


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    while sum(map(len, words)) < size:
        words.append(rng.choice(_WORDS) + rng.choice((" ", " ", "\n", ", ", "; ", "")))
    return "".join(words)[:size]


def _agent_run(rng: random.Random) -> tuple[Message, ...]:
    messages = [
        Message.system("You are a coding agent. Use the tools to inspect and fix the repository."),
        Message.user(_text(rng, rng.choice((20, 300, 5_000)))),
    ]
    for step in range(rng.randint(1, 14)):
        looping = step > 0 and rng.random() < 0.3
        arguments = '{"path": "src/build.py"}' if looping else f'{{"path": "src/m{step}.py"}}'
        messages.append(
            Message.assistant(rng.choice(("", "Let me look.")), [ToolCall(f"c{step}", "read", arguments)])
        )
        failed = rng.random() < 0.3
        result = (
            "Error: build step failed with exit code 2"
            if failed
            else rng.choice(("", "   ", _text(rng, rng.choice((10, 30, 900, 4_096, 4_097, 9_000)))))
        )
        messages.append(Message.tool(f"c{step}", result, is_error=failed and rng.random() < 0.5))
    return tuple(messages)


def _runs() -> list[tuple[Message, ...]]:
    rng = random.Random(5)
    runs = [_agent_run(rng) for _ in range(40)]
    for row in load_tau_retail().table.rows:
        for outcome in row.outcomes.values():
            assert outcome.run is not None
            runs.append((*row.prompt, *(item.message for item in outcome.run.messages)))
    return runs


def _steps(run: tuple[Message, ...]) -> list[tuple[Message, ...]]:
    """What each step of the run sends: the history up to each model call (after a user or tool turn)."""
    return [run[: end + 1] for end, message in enumerate(run) if message.role in ("user", "tool")]


def _figures(history: tuple[Message, ...]) -> tuple[object, ...]:
    request = ChatRequest(messages=history)
    context = StepContext(step_type=StepType.OBSERVE, step_index=len(history) // 2)
    return (
        extract_signals(request, context),
        messages_tokens(history),
        estimate_request_tokens(request),
        text_tokens.texts_tokens([m.text for m in history]),
    )


def test_each_step_of_a_run_gets_the_figures_of_a_fresh_count(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [step for run in _runs() for step in _steps(run)]
    monkeypatch.setattr(text_tokens, "_KEPT", {})
    monkeypatch.setattr(signals, "_KEPT_INSTRUCTIONS", {})
    kept = [_figures(step) for step in steps]
    kept_again = [_figures(step) for step in steps]  # every text seen before
    # The runs' texts and requests were kept, and read back the second time.
    assert len(text_tokens._KEPT) > 100 and len(signals._KEPT_INSTRUCTIONS) > 100

    fresh = []
    for step in steps:
        monkeypatch.setattr(text_tokens, "_KEPT", {})
        monkeypatch.setattr(signals, "_KEPT_INSTRUCTIONS", {})
        fresh.append(_figures(step))
    assert kept == fresh
    assert kept_again == fresh
    # And the one-by-one estimate, which keeps nothing, agrees.
    assert [figures[1] for figures in fresh] == [sum(map(message_tokens, step)) for step in steps]


def test_full_stores_start_over_and_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [step for run in _runs()[:40] for step in _steps(run)]
    monkeypatch.setattr(text_tokens, "_KEPT", {})
    fresh = [_figures(step) for step in steps]
    monkeypatch.setattr(text_tokens, "_KEPT", {})
    monkeypatch.setattr(signals, "_KEPT_INSTRUCTIONS", {})
    monkeypatch.setattr(text_tokens, "_MAX_KEPT", 3)
    monkeypatch.setattr(signals, "_MAX_KEPT_INSTRUCTIONS", 2)
    assert [_figures(step) for step in steps] == fresh
    assert len(text_tokens._KEPT) <= 3 and len(signals._KEPT_INSTRUCTIONS) <= 2


def test_only_texts_counted_exactly_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_tokens, "_KEPT", {})
    short, long = "x" * 4_096, "y " * 3_000
    assert text_tokens.kept_tokens(short) == text_tokens.estimate_tokens(short)
    assert text_tokens.kept_tokens(long) == text_tokens.estimate_tokens(long)
    assert text_tokens.texts_tokens([long, short, long]) == 2 * text_tokens.estimate_tokens(long) + (
        text_tokens.estimate_tokens(short)
    )
    assert text_tokens.texts_tokens([]) == 0
    assert list(text_tokens._KEPT) == [short]  # a sampled text is cheap to count and costly to keep
