"""`with_structured_output(method="json_schema", strict=...)` asks the provider for strict adherence.

The `strict` flag was dropped on the way: the provider was sent the schema without `strict`, so
OpenAI models kept to it only as well as they could (ChatOpenAI sends it as `json_schema.strict`).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from gearshift import InvalidRequestError, Router
from gearshift.testing import LocalOpenAIServer
from gearshift_langchain import RoutedChatModel


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


def _sent_format(server: LocalOpenAIServer) -> dict[str, Any]:
    body = server.requests[-1].body
    assert isinstance(body, dict)
    return dict(body["response_format"]["json_schema"])


@pytest.mark.parametrize("strict", [True, False, None])
def test_the_strict_flag_reaches_the_provider(
    server: LocalOpenAIServer, router: Router, strict: bool | None
) -> None:
    model = RoutedChatModel(router=router)
    joke = model.with_structured_output(Joke, method="json_schema", strict=strict).invoke("a joke")
    assert isinstance(joke, Joke)
    sent = _sent_format(server)
    assert sent.get("strict", "absent") == ("absent" if strict is None else strict)
    assert sent["schema"]["required"] == ["setup", "punchline"]


def test_a_bound_response_format_keeps_its_strict_flag_and_a_bad_one_is_refused(
    server: LocalOpenAIServer, router: Router
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    schema["additionalProperties"] = False
    model = RoutedChatModel(router=router)
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}
    model.bind(response_format=response_format).invoke("give me a")
    assert _sent_format(server)["strict"] is True
    response_format["json_schema"]["strict"] = "yes"  # type: ignore[index]
    with pytest.raises(InvalidRequestError, match=r"json_schema.strict must be true or false, got 'yes'"):
        model.bind(response_format=response_format).invoke("give me a")
