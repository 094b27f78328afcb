"""The public surface of `gearshift_langchain`: exactly what `__all__` says, each name documented."""

from __future__ import annotations

import gearshift_langchain


def test_the_exact_public_names() -> None:
    assert gearshift_langchain.__all__ == ["RoutedChatModel", "routed_branch"]
    for name in gearshift_langchain.__all__:
        assert getattr(gearshift_langchain, name).__doc__
