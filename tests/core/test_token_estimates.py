"""The token estimate's byte-translation fast path counts exactly what its regex defines, on any text.

`_text_tokens._count` counts ASCII text with byte translations rather than the regex `_PIECES`; the
estimates of texts, messages and whole histories must not move by one token for that. Each is checked
against the same estimate with `_count` replaced by the regex, on generated texts and histories and on
the bundled tau-bench retail runs (long system prompts that are sampled, non-ASCII tool results).
"""

from __future__ import annotations

import random

import pytest

from gearshift import Message, ToolCall
from gearshift import _text_tokens as text_tokens
from gearshift.datasets import load_tau_retail
from gearshift.signals._tokens import message_tokens, messages_tokens

_RUNS = {
    "letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digits": "0123456789",
    "symbols": ".,;:{}[]()\"'-_/\\#$%&*+=<>?!@^`|~\x00\x7f",
    "blanks": " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f",
}


def _regex_count(text: str) -> int:
    return len(text_tokens._PIECES.findall(text))


def _text(rng: random.Random, size: int) -> str:
    """Runs of letters, digits, symbols and blanks of every length around a piece's (8 and 3)."""
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        kind = rng.choice(tuple(_RUNS))
        length = rng.choice((1, 2, 3, 4, 6, 7, 8, 9, 15, 16, 17, 24, 25, 40))
        parts.append("".join(rng.choices(_RUNS[kind], k=length)))
    return "".join(parts)[:size]


def _texts(seed: int) -> list[str]:
    rng = random.Random(seed)
    sizes = (0, 1, 7, 23, 24, 25, 64, 300, 1_000, 4_096, 4_097, 9_000)
    texts = [_text(rng, size) for size in sizes for _ in range(20)]
    texts += ["a" * n for n in range(1, 40)] + ["7" * n for n in range(1, 40)]
    # Long texts of short words with a few long ones (measured one by one) or more (marked in one pass).
    for long_words in (1, 2, 7, 8, 9, 30):
        words = rng.choices(("a", "to", "build", "failed", "12", "x1"), k=700)
        for _ in range(long_words):
            words[rng.randrange(len(words))] = "a" * rng.choice((9, 16, 17, 24, 40)) + rng.choice(
                ("", "7", ".")
            )
        texts += [" ".join(words), " ".join(words)[:2048], " ".join(words) + "b" * 20]
    texts += [f"{text}é" for text in texts[::9]]  # off the ASCII path
    return texts


def test_the_fast_count_is_the_regex_count() -> None:
    for text in _texts(1):
        assert text_tokens._count(text) == _regex_count(text), repr(text[:60])


def _histories() -> list[tuple[Message, ...]]:
    rng = random.Random(2)
    histories = []
    for _ in range(30):
        messages = [Message.system(_text(rng, rng.choice((50, 5_000)))), Message.user(_text(rng, 200))]
        for step in range(rng.randint(1, 12)):
            arguments = f'{{"path": "src/m{step}.py", "limit": {rng.randint(1, 10_000)}}}'
            messages.append(Message.assistant(_text(rng, 20), [ToolCall(f"c{step}", "read_file", arguments)]))
            result = _text(rng, rng.choice((0, 40, 900, 6_000)))
            messages.append(Message.tool(f"c{step}", result + ("ü" if rng.random() < 0.2 else "")))
        histories.append(tuple(messages))
    runs = load_tau_retail()
    for row in runs.table.rows:
        for outcome in row.outcomes.values():
            assert outcome.run is not None
            histories.append((*row.prompt, *(item.message for item in outcome.run.messages)))
    return histories


def test_history_estimates_are_the_same_as_with_the_regex_count(monkeypatch: pytest.MonkeyPatch) -> None:
    histories = _histories()
    texts = [list(text) for text in (_texts(3)[i : i + 25] for i in range(0, 250, 25))]
    monkeypatch.setattr(text_tokens, "_KEPT", {})  # estimates kept from the fast count would be read back
    fast = (
        [messages_tokens(history) for history in histories],
        [sum(map(message_tokens, history)) for history in histories],
        [text_tokens.texts_tokens(group) for group in texts],
        [sum(map(text_tokens.estimate_tokens, group)) for group in texts],
    )
    monkeypatch.setattr(text_tokens, "_count", _regex_count)
    monkeypatch.setattr(text_tokens, "_KEPT", {})
    regex = (
        [messages_tokens(history) for history in histories],
        [sum(map(message_tokens, history)) for history in histories],
        [text_tokens.texts_tokens(group) for group in texts],
        [sum(map(text_tokens.estimate_tokens, group)) for group in texts],
    )
    assert fast == regex
    assert fast[0] == fast[1] and fast[2] == fast[3]  # one pass over a history counts as each text alone
