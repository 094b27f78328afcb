"""`with_structured_output(method="json_schema", strict=...)` asks the provider for strict adherence.

The `strict` flag was dropped on the way: the provider was sent the schema without `strict`, so
OpenAI models kept to it only as well as they could (ChatOpenAI sends it as `json_schema.strict`).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from gearshift import (
    InvalidRequestError,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    run_sync,
)
from gearshift.providers import AnthropicProvider
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer
from gearshift_langchain import RoutedChatModel
from gearshift_langchain._structured import StructuredMethod


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


def _sent_body(server: LocalOpenAIServer) -> dict[str, Any]:
    body = server.requests[-1].body
    assert isinstance(body, dict)
    return body


def _sent_format(server: LocalOpenAIServer) -> dict[str, Any]:
    return dict(_sent_body(server)["response_format"]["json_schema"])


def _ask_joke(router: Router, method: StructuredMethod, strict: bool | None) -> None:
    joke = RoutedChatModel(router=router).with_structured_output(Joke, method=method, strict=strict)
    assert isinstance(joke.invoke("a joke"), Joke)


@pytest.mark.parametrize("strict", [True, False, None])
def test_the_strict_flag_reaches_the_provider(
    server: LocalOpenAIServer, router: Router, strict: bool | None
) -> None:
    _ask_joke(router, "json_schema", strict)
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


@pytest.mark.parametrize("strict", [True, None])
def test_anthropic_gets_the_strict_flag_on_its_answer_tool(strict: bool | None) -> None:
    # Anthropic answers a response schema through a forced tool: the flag goes on that tool.
    with LocalAnthropicServer(models=("claude-small",), api_key="sk-ant-strict-5c2") as server:
        provider = AnthropicProvider(api_key="sk-ant-strict-5c2", base_url=server.base_url, timeout=10.0)
        prices = ModelPrices(input=1.0, output=5.0)
        spec = ModelSpec(id="small", provider="anthropic", model="claude-small", tier=1, prices=prices)
        router = Router(ModelRegistry([spec]), policy=SignalScorer(), providers=[provider])
        try:
            model = RoutedChatModel(router=router)
            joke = model.with_structured_output(Joke, method="json_schema", strict=strict).invoke("a joke")
        finally:
            run_sync(router.aclose())
    assert isinstance(joke, Joke)
    (answer_tool,) = server.requests[-1].body["tools"]
    assert answer_tool.get("strict", "absent") == ("absent" if strict is None else strict)


@pytest.mark.parametrize("strict", [True, None])
def test_function_calling_asks_for_one_call_as_chatopenai_does(
    server: LocalOpenAIServer, router: Router, strict: bool | None
) -> None:
    # The answer is the first call of the schema's tool: parallel calls were left allowed, which
    # OpenAI's strict mode does not keep to the schema, and which ChatOpenAI turns off.
    _ask_joke(router, "function_calling", strict)
    body = _sent_body(server)
    assert (body["parallel_tool_calls"], body["tool_choice"]["function"]["name"]) == (False, "Joke")
