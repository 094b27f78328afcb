"""`RoutedChatModel`'s settings: a misspelled one is refused by name, not silently dropped.

Pydantic (and so LangChain's `BaseChatModel`) ignores unknown keyword arguments: a `max_token=50`
left every answer uncapped without a word. ChatOpenAI at least warns and passes them on.
"""

from __future__ import annotations

import pytest

from gearshift import InvalidRequestError, Router
from gearshift_langchain import RoutedChatModel


def test_a_misspelled_setting_is_refused_with_the_closest_name(router: Router) -> None:
    with pytest.raises(InvalidRequestError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"):
        RoutedChatModel(router=router, max_token=50)
    with pytest.raises(InvalidRequestError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        RoutedChatModel(router=router, temprature=0.2, agent_id="a")
    with pytest.raises(InvalidRequestError, match=r"no setting 'zzz'$"):
        RoutedChatModel(router=router, zzz=1)


def test_langchain_s_own_settings_are_still_taken(router: Router) -> None:
    # api_key and max_retries: LangChain's standard arguments, which the standard suites pass.
    model = RoutedChatModel(
        router=router, tags=["t"], metadata={"k": "v"}, disable_streaming=True, max_tokens=5, api_key="k"
    )
    assert (model.tags, model.disable_streaming, model.max_tokens) == (["t"], True, 5)
    assert model.metadata is not None and model.metadata["k"] == "v"
