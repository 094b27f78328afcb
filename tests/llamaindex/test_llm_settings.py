"""`RoutedLLM`'s settings: a misspelled one is refused by name, not silently dropped.

Pydantic (and so LlamaIndex's `LLM`) ignores unknown keyword arguments: `max_token=50` left every
answer uncapped without a word.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from llama_index.core.llms import ChatMessage
from llamaindex_support import REGISTRY, MakeRouter, local_config

from gearshift import CallerHints, ConfigError, GearshiftConfig, InvalidRequestError, ModelRegistry
from gearshift.testing import LocalOpenAIServer
from gearshift_llamaindex import RoutedLLM


async def test_a_misspelled_setting_is_refused_with_the_closest_name(make_router: MakeRouter) -> None:
    router = make_router()
    with pytest.raises(
        ConfigError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"
    ) as raised:
        RoutedLLM(router, max_token=50)
    assert raised.value.key == "max_token"
    with pytest.raises(ConfigError, match=r"no setting 'contex_window' \(did you mean 'context_window'\?\)"):
        RoutedLLM(router, agent_id="a", contex_window=8000)
    with pytest.raises(ConfigError, match=r"no setting 'zzz'$"):
        RoutedLLM(router, zzz=1)


async def test_a_copy_with_a_misspelled_setting_is_refused_as_the_constructor_refuses_it(
    make_router: MakeRouter,
) -> None:
    # pydantic's model_copy sets what `update` names without validation: `max_token` was kept, unused.
    router = make_router()
    llm = RoutedLLM(router, max_tokens=5)
    with pytest.raises(
        ConfigError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"
    ) as raised:
        llm.model_copy(update={"max_token": 50})
    assert raised.value.key == "max_token"
    copied = llm.model_copy(update={"max_tokens": 50})
    assert (copied.max_tokens, llm.max_tokens, copied.router) == (50, 5, router)
    # A deep copy with an update: pydantic deep-copied field by field, and the router's locks with it.
    deep = llm.model_copy(update={"max_tokens": 60, "budget_keys": ("team:x",)}, deep=True)
    assert (deep.max_tokens, deep.budget_keys, deep.router) == (60, ("team:x",), router)


async def test_llamaindex_s_own_settings_are_still_taken(make_router: MakeRouter) -> None:
    llm = RoutedLLM(make_router(), system_prompt="Be brief.", max_tokens=5, context_window=8000)
    assert (llm.system_prompt, llm.max_tokens, llm.metadata.context_window) == ("Be brief.", 5, 8000)


async def test_a_deep_copy_shares_the_router_and_copies_the_settings(make_router: MakeRouter) -> None:
    # The router was deep-copied with the LLM, down to its SDK clients' locks: "cannot pickle
    # '_thread.lock'". A router is a shared resource, like an HTTP client: the copies share it.
    router = make_router()
    llm = RoutedLLM(router, budget_keys=("team:a",), max_tokens=5, system_prompt="Be brief.")
    for copied in (copy.deepcopy(llm), llm.model_copy(deep=True)):
        assert copied.router is router
        assert (copied.budget_keys, copied.max_tokens, copied.system_prompt) == (("team:a",), 5, "Be brief.")
        assert copied.metadata.context_window == llm.metadata.context_window
        assert (await copied.acomplete("Name a colour")).text


async def test_a_pickled_llm_is_rebuilt_from_its_config_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "gearshift.toml"
    with LocalOpenAIServer(models=("small", "large")) as keyless:
        config.write_text(local_config(keyless.base_url))
        llm = RoutedLLM(config=config, max_tokens=7, agent_id="picker", system_prompt="Be brief.")
        copied = pickle.loads(pickle.dumps(llm))
        # LlamaIndex logged a warning that it dropped the unpicklable router on every pickle.
        assert not caplog.records
        assert (copied.config, copied.max_tokens, copied.agent_id) == (str(config), 7, "picker")
        assert list(copied.router.registry.ids) == ["small", "large"]
        async with copied.router:
            answer = await copied.acomplete("Name a colour")
        assert answer.additional_kwargs["gearshift"]["model_id"] == "small"
        assert [r.model for r in keyless.requests] == ["small"]


async def test_llamaindex_s_round_trip_rebuilds_the_router_from_its_config_file(tmp_path: Path) -> None:
    # `RoutedLLM.from_dict(llm.to_dict())` is LlamaIndex's own serialisation; with the config file's
    # path among the settings, the copy routes through the file's models, as an unpickled one does.
    config = tmp_path / "gearshift.toml"
    with LocalOpenAIServer(models=("small", "large")) as keyless:
        config.write_text(local_config(keyless.base_url))
        llm = RoutedLLM(config=config, max_tokens=7, system_prompt="Be brief.")
        for again in (RoutedLLM.from_dict(llm.to_dict()), RoutedLLM.from_json(llm.to_json())):
            assert (again.config, again.max_tokens, again.system_prompt) == (str(config), 7, "Be brief.")
            assert list(again.router.registry.ids) == ["small", "large"]
            async with again.router:
                await again.acomplete("Name a colour")
        assert [r.model for r in keyless.requests] == ["small", "small"]


@pytest.mark.parametrize("given", ["relative", "found here", "named by $GEARSHIFT_CONFIG"])
async def test_a_copy_made_in_another_folder_reads_the_file_the_llm_was_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    # The path was kept as given ("gearshift.toml") or not at all (found by the search): a pickle or
    # from_dict in another working directory read that folder's gearshift.toml, another router's.
    home, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    with LocalOpenAIServer(models=("small", "large")) as keyless:
        (home / "gearshift.toml").write_text(local_config(keyless.base_url))
        other = local_config(keyless.base_url).replace('id = "small"', 'id = "tiny"')
        (elsewhere / "gearshift.toml").write_text(other.replace('id = "large"', 'id = "huge"'))
        monkeypatch.chdir(home)
        monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
        if given == "relative":
            llm = RoutedLLM(config="gearshift.toml", max_tokens=7)
        else:
            if given.startswith("named"):
                monkeypatch.setenv("GEARSHIFT_CONFIG", "gearshift.toml")
            llm = RoutedLLM(max_tokens=7)
        assert llm.config == str(home / "gearshift.toml")
        monkeypatch.chdir(elsewhere)
        for again in (pickle.loads(pickle.dumps(llm)), RoutedLLM.from_dict(llm.to_dict())):
            assert again.config == str(home / "gearshift.toml")
            assert list(again.router.registry.ids) == ["small", "large"]  # not elsewhere's tiny, huge


async def test_an_llm_around_a_router_built_in_python_refuses_to_be_serialised(
    make_router: MakeRouter,
) -> None:
    # LlamaIndex's `to_dict` kept the settings but not the router, and `from_dict` built the LLM from
    # no config: the built-in ladder, so the copy sent its prompts to OpenAI and Anthropic instead.
    python_config = GearshiftConfig.from_dict({"budgets": {"store": "memory://"}})
    for llm in (RoutedLLM(make_router(), max_tokens=5), RoutedLLM(config=python_config)):
        for serialise in (llm.to_dict, llm.to_json):
            with pytest.raises(
                TypeError, match=r"cannot serialise a RoutedLLM whose router was built in Python"
            ):
                serialise()


async def test_an_llm_around_a_router_built_in_python_refuses_to_be_pickled(make_router: MakeRouter) -> None:
    # LlamaIndex pickles an LLM by dropping what does not pickle (the router) and calling the
    # constructor again with the fields: a router passed in was silently swapped for the built-in
    # ladder, and the unpickled LLM sent its prompts to OpenAI and Anthropic instead of the router's
    # models; a config made in Python came back without a router at all (KeyError '_core' on a call).
    python_config = GearshiftConfig.from_dict({"budgets": {"store": "memory://"}})
    for llm in (RoutedLLM(make_router()), RoutedLLM(config=python_config)):
        with pytest.raises(TypeError, match=r"cannot pickle a RoutedLLM whose router was built in Python"):
            pickle.dumps(llm)


async def test_model_validate_goes_through_the_constructor(make_router: MakeRouter) -> None:
    # pydantic calls an overridden __init__ from model_validate: unknown settings are refused by name
    # and the LLM gets its router, as from the constructor.
    router = make_router()
    llm = RoutedLLM.model_validate({"router": router, "max_tokens": 5})
    assert (llm.router, llm.max_tokens) == (router, 5)
    with pytest.raises(ConfigError, match=r"no setting 'max_token' \(did you mean 'max_tokens'\?\)"):
        RoutedLLM.model_validate({"router": router, "max_token": 5})


async def test_sampling_settings_reach_the_wire(make_router: MakeRouter, server: LocalOpenAIServer) -> None:
    """LlamaIndex's OpenAI LLM users set `top_p` or a `seed`: RoutedLLM refused them by name, since a
    routed request could not carry them. `top_k` (Anthropic's) is left out for this OpenAI-compatible
    model, and the decision's reasons say so."""
    llm = RoutedLLM(make_router(), top_p=0.3, seed=5, frequency_penalty=0.1, top_k=40)
    response = await llm.achat(
        [ChatMessage(role="user", content="Name a colour")], presence_penalty=-0.5, seed=9
    )
    sent = server.requests[-1].body
    wanted = {"top_p": 0.3, "seed": 9, "frequency_penalty": 0.1, "presence_penalty": -0.5, "top_k": None}
    assert {k: sent.get(k) for k in wanted} == wanted
    assert "top_k not sent" in response.additional_kwargs["gearshift"]["reasons"][-1]
    [_ async for _ in await llm.astream_complete("Name a colour", top_p=0.8)]
    assert (server.requests[-1].body["top_p"], server.requests[-1].body["seed"]) == (0.8, 5)
    with pytest.raises(InvalidRequestError, match="top_p must be a number from 0 to 1, got 2"):
        await llm.acomplete("Name a colour", top_p=2)
    with pytest.raises(ValueError, match="top_p"):
        RoutedLLM(make_router(), top_p=1.5)
    # A per-call max_tokens of the wrong type raised "'<=' not supported between 'str' and 'int'".
    with pytest.raises(InvalidRequestError, match="max_tokens must be a positive integer, got '5'"):
        await llm.acomplete("Name a colour", max_tokens="5")


async def test_reasoning_effort_reaches_the_models_marked_for_it(
    make_router: MakeRouter, server: LocalOpenAIServer
) -> None:
    """OpenAI's `reasoning_effort`, as a setting and a call option: it was refused by name. It reaches
    a model marked `reasoning`; one not marked gets the request without it, and the
    decision's reasons say so."""
    registry = ModelRegistry(spec.model_copy(update={"reasoning": spec.id == "large"}) for spec in REGISTRY)
    llm = RoutedLLM(make_router(registry), reasoning_effort="low")
    to_large = CallerHints(force_model="large")
    await llm.achat([ChatMessage(role="user", content="Name a colour")], hints=to_large)
    assert server.requests[-1].body["reasoning_effort"] == "low"
    [_ async for _ in await llm.astream_complete("Name a colour", hints=to_large, reasoning_effort="high")]
    assert server.requests[-1].body["reasoning_effort"] == "high"
    response = await llm.acomplete("Name a colour", hints=CallerHints(force_model="small"))
    assert "reasoning_effort" not in server.requests[-1].body
    assert response.additional_kwargs["gearshift"]["reasons"][-1] == (
        "reasoning_effort not sent: small is not a reasoning model"
    )
    with pytest.raises(InvalidRequestError, match=r"reasoning_effort must be one of .*got 'hgih'"):
        await llm.acomplete("Name a colour", reasoning_effort="hgih")
