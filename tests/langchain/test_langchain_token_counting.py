"""Token counting on `RoutedChatModel`: gearshift's own estimate, as the router counts a request.

LangChain's default counts with GPT-2's tokenizer from `transformers` (not a dependency, and
downloaded on first use): `trim_messages(token_counter=model)` failed with an ImportError.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage, trim_messages
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from gearshift import ChatRequest, Router, ToolSpec, estimate_request_tokens, estimate_tokens
from gearshift_langchain import RoutedChatModel
from gearshift_langchain._convert import to_messages


@tool
def lookup(city: str) -> str:
    """Look up the weather in a city."""
    return "sunny"


HISTORY = [
    SystemMessage("You answer questions about the weather."),
    HumanMessage("What is the weather in Paris? " * 20),
    AIMessage("", tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "c1"}]),
    ToolMessage("sunny, 21 degrees", tool_call_id="c1"),
    AIMessage("It is sunny in Paris."),
    HumanMessage("And in Rome?"),
]


def test_messages_and_tools_are_counted_as_the_router_counts_their_request(router: Router) -> None:
    model = RoutedChatModel(router=router)
    spec = ToolSpec.parse(convert_to_openai_tool(lookup))
    request = ChatRequest(to_messages(HISTORY), (spec,))
    assert model.get_num_tokens_from_messages(HISTORY, tools=[lookup]) == estimate_request_tokens(request)
    assert model.get_num_tokens_from_messages(HISTORY) == estimate_request_tokens(
        ChatRequest(to_messages(HISTORY))
    )
    assert model.get_num_tokens("What is the weather in Paris?") == estimate_tokens(
        "What is the weather in Paris?"
    )
    assert model.get_num_tokens_from_messages([]) == 0
    assert model.get_num_tokens_from_messages([SystemMessage("")]) == 4  # the template's overhead


def test_trim_messages_counts_with_the_model(router: Router) -> None:
    model = RoutedChatModel(router=router)
    last_two = model.get_num_tokens_from_messages(HISTORY[-2:])
    trimmed = trim_messages(HISTORY, max_tokens=last_two, token_counter=model, strategy="last")
    assert trimmed == HISTORY[-2:]


def test_a_custom_tokenizer_still_takes_precedence(router: Router) -> None:
    model = RoutedChatModel(router=router, custom_get_token_ids=lambda text: list(range(len(text))))
    assert model.get_num_tokens("twelve chars") == 12
