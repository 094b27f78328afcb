"""The store of converted messages: found by key, facts found by the kept message, bounded."""

from __future__ import annotations

import pytest

from gearshift import KeptMessages, Message


def test_a_message_and_its_facts_are_found_by_key_and_by_the_kept_message() -> None:
    store: KeptMessages[str] = KeptMessages()
    kept = Message.tool("c1", "done", name="read")
    store.keep(("tool", "done"), kept, "ok")
    assert store.get(("tool", "done")) is kept
    assert store.get(("tool", "other")) is None
    assert store.facts(kept) == "ok"
    # An equal message the store did not return has no facts: they are found by identity only.
    assert store.facts(Message.tool("c1", "done", name="read")) is None
    store.keep(("user", "hi"), Message.user("hi"))
    assert store.facts(store.get(("user", "hi"))) is None  # type: ignore[arg-type]


def test_past_its_limit_the_store_drops_its_older_half_with_their_facts() -> None:
    store: KeptMessages[int] = KeptMessages(limit=8)
    messages = [Message.user(f"turn {n}") for n in range(9)]
    for n, message in enumerate(messages):
        store.keep(n, message, n)
    assert len(store) == 5  # 4 dropped at the 9th
    assert [store.get(n) for n in range(4)] == [None] * 4
    assert [store.get(n) for n in range(4, 9)] == messages[4:]
    assert [store.facts(m) for m in messages] == [None] * 4 + [4, 5, 6, 7, 8]


def test_a_store_too_small_to_keep_anything_is_refused() -> None:
    with pytest.raises(ValueError, match="limit=1"):
        KeptMessages(limit=1)
