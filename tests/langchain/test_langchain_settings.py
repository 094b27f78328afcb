"""`RoutedChatModel`'s settings: a misspelled one is refused by name, not silently dropped.

Pydantic (and so LangChain's `BaseChatModel`) ignores unknown keyword arguments: a `max_token=50`
left every answer uncapped without a word. ChatOpenAI at least warns and passes them on.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import ConfigurableField
from langchain_core.tools import tool

from gearshift import InvalidRequestError, ModelRegistry, Router, SignalScorer
from gearshift._bridge import run_sync
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer
from gearshift_langchain import RoutedChatModel


def test_a_misspelled_setting_is_refused_with_the_closest_name(router: Router) -> None:
    with pytest.raises(InvalidRequestError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"):
        RoutedChatModel(router=router, max_token=50)
    with pytest.raises(InvalidRequestError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        RoutedChatModel(router=router, temprature=0.2, agent_id="a")
    with pytest.raises(InvalidRequestError, match=r"no setting 'zzz'$"):
        RoutedChatModel(router=router, zzz=1)


def test_a_copy_with_a_misspelled_setting_is_refused_as_the_constructor_refuses_it(router: Router) -> None:
    # pydantic's model_copy sets what `update` names without validation: `max_token` was kept, unused.
    model = RoutedChatModel(router=router, max_tokens=5)
    with pytest.raises(InvalidRequestError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"):
        model.model_copy(update={"max_token": 50})
    copied = model.model_copy(update={"max_tokens": 50, "api_key": "k"})  # LangChain's standard, dropped
    assert (copied.max_tokens, model.max_tokens, copied.router) == (50, 5, router)
    # A deep copy with an update: pydantic deep-copied field by field, and the router's locks with it.
    deep = model.model_copy(update={"max_tokens": 60, "budget_keys": ["team:x"]}, deep=True)
    assert (deep.max_tokens, deep.budget_keys, deep.router) == (60, ["team:x"], router)


def test_a_configurable_setting_keeps_the_models_router(router: Router, server: LocalOpenAIServer) -> None:
    # LangChain builds the configured model anew from its settings: the router, given to the
    # constructor and no setting, was replaced by one built from no config (the built-in ladder).
    model = RoutedChatModel(router=router).configurable_fields(max_tokens=ConfigurableField(id="cap"))
    answer = model.with_config(configurable={"cap": 7}).invoke("Name a colour")
    assert answer.response_metadata["model_name"] in router.registry
    assert [r.body.get("max_completion_tokens", r.body.get("max_tokens")) for r in server.requests] == [7]
    with pytest.raises(ValueError, match="max_token"):  # LangChain refuses a name that is no setting
        RoutedChatModel(router=router).configurable_fields(max_token=ConfigurableField(id="cap"))


def test_n_1_is_taken_as_asking_for_nothing_and_more_answers_are_refused(
    router: Router, server: LocalOpenAIServer
) -> None:
    # n=1 asks for the one answer every call gets: ChatOpenAI code that says so was refused by name, as
    # a setting and as a call option, with logprobs and extra_body, which ask for what gearshift cannot give.
    model = RoutedChatModel(router=router, n=1)
    assert model.invoke("Name a colour", n=1).content
    assert model.bind(n=1).invoke("Name a colour").content
    assert all("n" not in request.body for request in server.requests)
    for option, value in (("n", 2), ("n", True), ("logprobs", True), ("extra_body", {"x": 1})):
        with pytest.raises(InvalidRequestError, match=f"does not accept the call option\\(s\\) '{option}'"):
            model.invoke("Name a colour", **{option: value})
    with pytest.raises(InvalidRequestError, match="no setting 'n'"):
        RoutedChatModel(router=router, n=2)


def test_langchain_s_own_settings_are_still_taken(router: Router) -> None:
    # api_key and max_retries: LangChain's standard arguments, which the standard suites pass.
    model = RoutedChatModel(
        router=router, tags=["t"], metadata={"k": "v"}, disable_streaming=True, max_tokens=5, api_key="k"
    )
    assert (model.tags, model.disable_streaming, model.max_tokens) == (["t"], True, 5)
    assert model.metadata is not None and model.metadata["k"] == "v"


def test_stream_usage_leaves_usage_off_the_last_chunk_as_chatopenai_does(router: Router) -> None:
    # ChatOpenAI's `stream_usage` (a setting and a call option): code written for it was refused by
    # name as a setting, and as a call option.
    def usages(model: RoutedChatModel, **options: object) -> list[object]:
        return [chunk.usage_metadata for chunk in model.stream("Name a colour", **options)]

    default = RoutedChatModel(router=router)
    assert usages(default)[-1] is not None and not any(usages(default)[:-1])
    assert not any(usages(default, stream_usage=False))
    quiet = RoutedChatModel(router=router, stream_usage=False)
    assert not any(usages(quiet))
    assert usages(quiet, stream_usage=True)[-1] is not None
    assert quiet.invoke("Name a colour").usage_metadata is not None  # an answer still carries its usage


def test_a_deep_copy_shares_the_router_and_copies_the_settings(router: Router) -> None:
    # The router was deep-copied with the model, down to its SDK clients' locks: "cannot pickle
    # '_thread.lock'". A router is a shared resource, like an HTTP client: the copies share it.
    model = RoutedChatModel(router=router, stop=["END"], metadata={"k": ["v"]}, max_tokens=5)
    for copied in (copy.deepcopy(model), model.model_copy(deep=True)):
        assert copied.router is router
        assert (copied.stop, copied.metadata, copied.max_tokens) == (["END"], model.metadata, 5)
        assert copied.stop is not model.stop and copied.metadata is not model.metadata
        assert copied.invoke("Name a colour").response_metadata["model_name"] in router.registry


def _ladder(*ids: str) -> str:
    # A config of these models; nothing listens on port 9: the test never calls a model.
    models = "".join(
        f'[[models]]\nid = "{id_}"\nprovider = "local"\nmodel = "{id_}"\ntier = {tier}\n'
        f"prices = {{ input = 1.0, output = 2.0 }}\n"
        for tier, id_ in enumerate(ids, 1)
    )
    provider = '[providers.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nrequire_key = false\n'
    return provider + models


@pytest.mark.parametrize("given", ["relative", "found here", "named by $GEARSHIFT_CONFIG"])
def test_a_model_rebuilt_in_another_folder_reads_the_file_it_was_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    # The path was kept as given ("gearshift.toml") or not at all (found by the search): a model rebuilt
    # from its settings in another working directory read that folder's gearshift.toml, another router's.
    home, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    (home / "gearshift.toml").write_text(_ladder("small", "large"))
    (elsewhere / "gearshift.toml").write_text(_ladder("tiny", "huge"))
    monkeypatch.chdir(home)
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    if given == "relative":
        model = RoutedChatModel(config="gearshift.toml", max_tokens=7)
    else:
        if given.startswith("named"):
            monkeypatch.setenv("GEARSHIFT_CONFIG", "gearshift.toml")
        model = RoutedChatModel(max_tokens=7)
    assert model.config == str(home / "gearshift.toml")
    monkeypatch.chdir(elsewhere)
    for again in (RoutedChatModel.model_validate(model.model_dump()), type(model)(**dict(model))):
        assert (again.config, again.max_tokens) == (str(home / "gearshift.toml"), 7)
        assert list(again.router.registry.ids) == ["small", "large"]  # not elsewhere's tiny, huge


def test_model_validate_goes_through_the_constructor(router: Router) -> None:
    # pydantic calls an overridden __init__ from model_validate: unknown settings are refused by name
    # and the model gets its router, as from the constructor.
    model = RoutedChatModel.model_validate({"router": router, "max_tokens": 5})
    assert (model.router, model.max_tokens) == (router, 5)
    with pytest.raises(ValueError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"):
        RoutedChatModel.model_validate({"router": router, "max_token": 5})


def test_sampling_settings_reach_the_wire_as_chatopenai_s_do(
    router: Router, server: LocalOpenAIServer
) -> None:
    """ChatOpenAI's `top_p`, `seed` and penalties, as settings and call options: they were refused by
    name, since a routed request could not carry them; `top_k` (Anthropic's) is left out for this
    OpenAI-compatible model, and the decision's reasons say so."""
    model = RoutedChatModel(router=router, top_p=0.3, seed=5, frequency_penalty=0.1, top_k=40)
    answer = model.invoke("Name a colour", presence_penalty=-0.5, seed=9)
    sent = server.requests[-1].body
    wanted = {"top_p": 0.3, "seed": 9, "frequency_penalty": 0.1, "presence_penalty": -0.5, "top_k": None}
    assert {k: sent.get(k) for k in wanted} == wanted
    assert "top_k not sent" in answer.response_metadata["gearshift"]["reasons"][-1]
    list(model.stream("Name a colour", top_p=0.8))
    assert (server.requests[-1].body["top_p"], server.requests[-1].body["seed"]) == (0.8, 5)
    with pytest.raises(InvalidRequestError, match="top_p must be a number from 0 to 1, got 2"):
        model.invoke("Name a colour", top_p=2)


def test_reasoning_effort_reaches_the_models_marked_for_it_as_chatopenai_s_does(
    server: LocalOpenAIServer, registry: ModelRegistry
) -> None:
    """ChatOpenAI's `reasoning_effort`, as a setting and a call option: it was refused by name. It
    reaches a model marked `reasoning`; one not marked gets the request without it,
    and the decision's reasons say so."""
    marked = ModelRegistry(spec.model_copy(update={"reasoning": spec.id == "large"}) for spec in registry)
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
    router = Router(marked, providers=[provider], policy=SignalScorer())
    try:
        large = RoutedChatModel(router=router, model="large", reasoning_effort="low")
        large.invoke("Name a colour")
        assert server.requests[-1].body["reasoning_effort"] == "low"
        list(large.stream("Name a colour", reasoning_effort="high"))
        assert server.requests[-1].body["reasoning_effort"] == "high"
        answer = large.bind(reasoning_effort="minimal").invoke("Name a colour", model="small")
        assert "reasoning_effort" not in server.requests[-1].body
        assert answer.response_metadata["gearshift"]["reasons"][-1] == (
            "reasoning_effort not sent: small is not a reasoning model"
        )
        with pytest.raises(InvalidRequestError, match=r"reasoning_effort must be one of .*got 'hgih'"):
            large.invoke("Name a colour", reasoning_effort="hgih")
    finally:
        run_sync(router.aclose())


def test_tools_given_as_call_options_may_be_tool_objects_as_bind_tools_takes_them(
    router: Router, server: LocalOpenAIServer
) -> None:
    """`bind(tools=[a_tool])` or `invoke(..., tools=[a_tool])` with a LangChain tool, a function or a
    pydantic model failed deep in the tool cache with "'StructuredTool' object has no attribute
    'get'"; they are converted as `bind_tools` converts them."""

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    answer = RoutedChatModel(router=router).bind(tools=[add], tool_choice="add").invoke("add 1 and 2")
    assert [call["name"] for call in answer.tool_calls] == ["add"]
    sent = server.requests[-1].body["tools"]
    assert [t["function"]["name"] for t in sent if t["function"]["name"] != "escalate"] == ["add"]
    with pytest.raises(InvalidRequestError, match="tool 0"):
        RoutedChatModel(router=router).invoke("add", tools=[42])


@pytest.mark.parametrize("batch_cascade", [False, True])
async def test_a_stop_string_is_one_stop_sequence_as_chatopenai_sends_it(
    router: Router, server: LocalOpenAIServer, batch_cascade: bool
) -> None:
    """`stop="END"` was read as the characters E, N and D (so any answer with an N stopped there),
    and a batch cascade dropped it; ChatOpenAI sends it as the one sequence it is."""
    model = RoutedChatModel(router=router, batch_cascade=batch_cascade)
    await model.abatch(["Count to ten"], stop="END")  # type: ignore[arg-type]
    model.invoke("Count to ten", stop="END")  # type: ignore[arg-type]
    assert [request.body["stop"] for request in server.requests] == [["END"], ["END"]]


class _LLMOutputs(BaseCallbackHandler):
    """The `llm_output` of every call's `on_llm_end`."""

    def __init__(self) -> None:
        self.outputs: list[dict[str, Any] | None] = []

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.outputs.append(response.llm_output)


def test_llm_output_carries_token_usage_as_chatopenai_s_does(
    router: Router, server: LocalOpenAIServer
) -> None:
    """`on_llm_end` handlers read `llm_output["token_usage"]` (ChatOpenAI's, in OpenAI's keys): it was
    absent, and `generate` over two inputs returned an empty `llm_output` where ChatOpenAI sums them."""
    model = RoutedChatModel(router=router)
    handler = _LLMOutputs()
    answer = model.invoke("Name a colour", config={"callbacks": [handler]})
    assert isinstance(answer, AIMessage) and answer.usage_metadata is not None
    usage = answer.usage_metadata
    expected = {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
    }
    (output,) = handler.outputs
    assert output is not None and output["token_usage"] == expected
    assert output["model_name"] == answer.response_metadata["model_name"]

    both = model.generate([[HumanMessage("Name a colour")], [HumanMessage("Name a fruit")]])
    answers = [generations[0].message for generations in both.generations]
    totals = [a.usage_metadata for a in answers if isinstance(a, AIMessage) and a.usage_metadata]
    assert both.llm_output is not None and len(totals) == 2
    assert both.llm_output["token_usage"] == {
        "prompt_tokens": sum(t["input_tokens"] for t in totals),
        "completion_tokens": sum(t["output_tokens"] for t in totals),
        "total_tokens": sum(t["total_tokens"] for t in totals),
    }
    assert both.llm_output["model_name"] == "small"  # both answered by it; a mixed batch names none
    one = model.generate([[HumanMessage("Name a colour")]]).llm_output
    assert one is not None and one["gearshift"]["model_id"] == "small"  # one call keeps its record
