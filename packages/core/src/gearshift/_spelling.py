"""Naming the setting, key or model a misspelled name probably meant, for error messages.

One helper for every "unknown name" error: the config's keys, the adapters' settings (LangChain's
`RoutedChatModel`, LlamaIndex's `RoutedLLM`) word their hint alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """`"did you mean 'max_tokens'?"`, naming the one of `known` closest to the unknown `name`, or
    None when none is close enough to be a misspelling of it."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean '{close[0]}'?" if close else None
