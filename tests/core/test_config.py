"""gearshift.toml: finding it, validating it, errors that name the key, defaults, and providers from it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from gearshift._errors import ConfigError
from gearshift._messages import ChatRequest, Message, Usage
from gearshift._models import ModelPrices, ModelSpec
from gearshift.config._config import BUILTIN_PROVIDERS, CONFIG_ENV, GearshiftConfig, load_config
from gearshift.config._defaults import DEFAULT_LADDER
from gearshift.config._pricing import lookup_prices
from gearshift.providers._anthropic import AnthropicProvider
from gearshift.providers._factory import build_providers, missing_keys
from gearshift.providers._openai import OpenAIProvider
from gearshift.routing._router import Router
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

OPENAI_KEY = "sk-local-openai-7f3a9c"  # the key the openai_server fixture requires
ANTHROPIC_KEY = "sk-ant-local-2b8e41"  # the key the anthropic_server fixture requires
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

LOCAL = """
[providers.local]
kind = "openai"
base_url = "http://localhost:8000/v1"
require_key = false
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither the developer's $GEARSHIFT_CONFIG nor a gearshift.toml in the checkout may leak in.
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "gearshift.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def model(
    id: str = "m",
    provider: str = "local",
    tier: float | str = 1,
    prices: str = "{input = 1, output = 2}",
    extra: str = "",
) -> str:
    """One [[models]] table, in TOML."""
    tier_value = f'"{tier}"' if isinstance(tier, str) else tier
    return (
        f'[[models]]\nid = "{id}"\nprovider = "{provider}"\nmodel = "{id}"\ntier = {tier_value}\n'
        f"prices = {prices}\n{extra}\n"
    )


def config_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    return caught.value


# -- where the config comes from ------------------------------------------------------------------


def test_no_file_anywhere_means_the_builtin_defaults() -> None:
    config = load_config()
    assert config.source == "<defaults>"
    # Weakest and cheapest first: tier, then price.
    assert config.registry().ids == (
        "gpt-5-nano",
        "gpt-4.1-nano",
        "claude-haiku-4-5",
        "gpt-5-mini",
        "claude-sonnet-4-5",
        "gpt-5",
        "claude-opus-4-5",
    )
    assert {m.id for m in config.models} == {entry.id for entry in DEFAULT_LADDER}
    assert config.providers == dict(BUILTIN_PROVIDERS)


def test_local_gearshift_toml_is_found(tmp_path: Path) -> None:
    write(tmp_path, LOCAL + model("here"))
    config = load_config()
    assert config.source == "gearshift.toml"
    assert config.registry().ids == ("here",)


def test_env_var_beats_the_local_file_and_an_explicit_path_beats_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, LOCAL + model("local-file"))
    from_env = write(tmp_path, LOCAL + model("from-env"), "env.toml")
    explicit = write(tmp_path, LOCAL + model("explicit"), "explicit.toml")
    monkeypatch.setenv(CONFIG_ENV, str(from_env))
    assert load_config().registry().ids == ("from-env",)
    assert load_config(explicit).registry().ids == ("explicit",)
    assert load_config(str(explicit)).source == str(explicit)


def test_explicit_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file") as caught:
        load_config(tmp_path / "missing.toml")
    assert caught.value.source == str(tmp_path / "missing.toml")


def test_a_folder_given_as_the_config_is_named_a_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `--config .` or `--config examples/` was refused as "no such config file", though it exists.
    with pytest.raises(ConfigError, match="is a folder, not a config file") as caught:
        load_config(tmp_path)
    assert caught.value.source == str(tmp_path)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=rf"is a folder, not a config file \(named by \${CONFIG_ENV}\)"):
        load_config()


def test_env_var_naming_a_missing_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=rf"gone\.toml.*\${CONFIG_ENV}"):
        load_config()


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[routing]\npolicy = "scorer"\ncooldown_seconds = \n')
    assert "not valid TOML" in str(error)
    assert "line 3" in str(error)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[log]\npath = "\xff\xfe.jsonl"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# -- validation errors name the key and the problem -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (LOCAL + model(tier=-1), "models[0].tier", "must be >= 0, got -1"),
        (LOCAL + model(tier="high"), "models[0].tier", 'must be an integer, got "high"'),
        (LOCAL + model() + model("n", tier=2.5), "models[1].tier", "must be an integer, got 2.5"),
        (
            LOCAL + model(prices="{input = -0.5, output = 2}"),
            "models[0].prices.input",
            "must be >= 0, got -0.5",
        ),
        (LOCAL + model(prices="{input = 1}"), "models[0].prices.output", "is required"),
        (LOCAL + model("a") + model("b") + model("a"), "models[2].id", "'a' is already used by models[0]"),
        (LOCAL + model(provider="loacl"), "models[0].provider", "did you mean 'local'?"),
        (LOCAL + model(provider="vllm"), "models[0].provider", "provider 'vllm' is not declared"),
        (LOCAL + model(extra="context_window = 0"), "models[0].context_window", "must be > 0, got 0"),
        (
            LOCAL + model(extra="supports_tool = true"),
            "models[0].supports_tool",
            "did you mean 'supports_tools'",
        ),
        (LOCAL + model().replace("tier = 1\n", "tire = 1\n"), "models[0].tire", "did you mean 'tier'?"),
        (LOCAL + model().replace('model = "m"\n', ""), "models[0].model", "is required"),
        ('[providers.x]\nkind = "gemini"\n', "providers.x.kind", "must be one of 'openai' or 'anthropic'"),
        ('[providers.x]\nkind = "openai"\n', "providers.x.api_key_env", "set api_key_env"),
        (LOCAL.replace("http://", ""), "providers.local.base_url", "must start with http://"),
        (LOCAL.replace(":8000", ":99999"), "providers.local.base_url", "port must be 0 to 65535"),
        (LOCAL.replace(":8000", ":80OO"), "providers.local.base_url", "port must be 0 to 65535"),
        (LOCAL.replace("localhost:8000", ""), "providers.local.base_url", "has no host"),
        (LOCAL + "timeout = 0\n", "providers.local.timeout", "must be > 0"),
        (LOCAL + 'max_tokens_field = "max_output"\n', "providers.local.max_tokens_field", "must be one of"),
        (
            '[providers.anthropic]\nmax_tokens_field = "max_tokens"\n',
            "providers.anthropic.max_tokens_field",
            "'openai' only",
        ),
        (
            '[providers.c]\nkind = "anthropic"\nrequire_key = false\n',
            "providers.c.require_key",
            "kind = 'openai'",
        ),
        ("[providers.openai]\ntimout = 5\n", "providers.openai.timout", "did you mean 'timeout'?"),
        (
            '[routing]\npolicy = "psychic"\n',
            "routing.policy",
            "must be one of 'default', 'scorer', 'rules', 'learned', 'classifier' or 'cheapest'",
        ),
        ('[routing]\npolicy = "learned"\n', "routing.learned", "needs a [routing.learned] table"),
        ('[routing]\npolicy = "rules"\n', "routing.rules", "needs at least one"),
        ("[routing]\ndefault_output_tokens = 0\n", "routing.default_output_tokens", "must be > 0"),
        ("[routing]\ncooldown_seconds = -1\n", "routing.cooldown_seconds", "must be >= 0, got -1"),
        (
            "[routing]\ncooldown_seconds = 60\nmax_cooldown_seconds = 10\n",
            "routing.max_cooldown_seconds",
            ">= cooldown_seconds",
        ),
        (
            '[routing]\nfallback_to_lower_tiers = "maybe"\n',
            "routing.fallback_to_lower_tiers",
            "true or false",
        ),
        ('[log]\npath = "decisions.txt"\n', "log.path", "must end in .jsonl"),
        ("[budget]\n", "budget", "unknown key 'budget'"),
        ("[[model]]\n", "model", "did you mean 'models'?"),
        ('models = "gpt-5"\n', "models", "must be an array"),
    ],
)
def test_validation_error_names_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert problem in str(error)


def test_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[quotas]\ndaily = 5\n")
    assert "unknown key 'quotas' (known: providers, models, routing, log, budgets)" in str(error)


def test_every_problem_is_listed_with_its_line_and_key(tmp_path: Path) -> None:
    text = (
        "[routing]\n"
        "cooldown_seconds = -1\n"
        "\n"
        "[[models]]\n"
        'id = "small"\n'
        'provider = "openai"\n'
        'model = "gpt-4o-mini"\n'
        'tier = "a"\n'
        "\n"
        "[log]\n"
        'pth = "decisions.jsonl"\n'
    )
    error = config_error(tmp_path, text)
    found = [(p.source, p.line, p.key) for p in error.problems]
    source = str(tmp_path / "gearshift.toml")
    # In the order the file reads, whatever order the schema checks them in.
    assert found == [
        (source, 2, "routing.cooldown_seconds"),
        (source, 8, "models[0].tier"),
        (source, 11, "log.pth"),
    ]
    assert (error.line, error.key) == (2, "routing.cooldown_seconds")
    message = str(error).splitlines()
    assert message[0] == f"{source}: 3 problems"
    assert "  line 8, key 'models[0].tier': must be an integer, got \"a\"" in message
    assert "  line 11, key 'log.pth': unknown key 'pth'; did you mean 'path'?" in message
    assert any(line.startswith("  line 2, key 'routing.cooldown_seconds': must be >= 0") for line in message)


def test_one_problem_names_its_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[routing]\n\n# the policy\npolicy = "dice"\n')
    assert (error.line, error.key, len(error.problems)) == (4, "routing.policy", 1)
    assert str(error).startswith(f"{tmp_path / 'gearshift.toml'}, line 4, key 'routing.policy': ")


def test_a_misspelt_required_key_is_one_problem(tmp_path: Path) -> None:
    error = config_error(
        tmp_path, '[[models]]\nid = "a"\nprovider = "openai"\nmodel = "gpt-4o-mini"\nteir = 1\n'
    )
    assert [(p.line, p.key) for p in error.problems] == [(5, "models[0].teir")]
    assert "did you mean 'tier'?" in str(error)


def test_api_key_in_the_file_is_refused_without_repeating_it(tmp_path: Path) -> None:
    secret = "sk-proj-DoNotPrintMe123"
    error = config_error(tmp_path, f'[providers.openai]\napi_key = "{secret}"\n')
    assert error.key == "providers.openai.api_key"
    assert "api_key_env" in str(error)
    assert "environment variable" in str(error)
    assert secret not in str(error)


@pytest.mark.parametrize(
    "table",
    [
        'kind = "openai"\napi_key_env = "{secret}"',  # the key pasted where its variable's name belongs
        'kind = "openai"\nrequire_key = false\nheaders = {{ Authorization = ["Bearer {secret}"] }}',
        'kind = "openai"\nrequire_key = false\nbase_url = "{secret}"',
        'kind = "openai"\nrequire_key = false\nbase_url = "http://user:{secret}@localhost:99999/v1"',
        'kind = "openai"\nrequire_key = "{secret}"',
        'kind = "openai"\nrequire_key = false\ntimeout = "{secret}"',
        'kind = "{secret}"',
    ],
)
def test_values_under_providers_are_never_echoed(tmp_path: Path, table: str) -> None:
    secret = "sk-ant-api03-NeverShowThis"
    error = config_error(tmp_path, "[providers.local]\n" + table.format(secret=secret) + "\n")
    assert error.key is not None
    assert error.key.startswith("providers.local.")
    assert secret not in str(error)


def test_python_construction_hides_provider_values_too() -> None:
    secret = "sk-inline-NeverShowThis"
    with pytest.raises(ValidationError) as caught:
        GearshiftConfig.model_validate({"providers": {"x": {"kind": "openai", "api_key": secret}}})
    assert secret not in str(caught.value)


# -- models, prices and defaults -------------------------------------------------------------------


def test_prices_and_context_window_come_from_genai_prices_when_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, '[[models]]\nid = "nano"\nprovider = "openai"\nmodel = "gpt-5-nano"\ntier = 1\n')
    spec = load_config(path).registry()["nano"]
    assert spec.prices == lookup_prices("openai", "gpt-5-nano")
    assert spec.context_window == 400_000


def test_written_prices_and_context_window_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[models]]\nid = "nano"\nprovider = "openai"\nmodel = "gpt-5-nano"\ntier = 1\n'
        "prices = {input = 0.01, output = 0.02}\ncontext_window = 1000\n",
    )
    spec = load_config(path).registry()["nano"]
    assert spec.prices == ModelPrices(input=0.01, output=0.02)
    assert spec.context_window == 1000


def test_written_prices_alone_still_get_the_known_context_window(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[models]]\nid = "o"\nprovider = "anthropic"\nmodel = "claude-opus-4-5"\ntier = 3\n'
        "prices = {input = 1, output = 1}\n",
    )
    spec = load_config(path).registry()["o"]
    assert spec.prices == ModelPrices(input=1, output=1)
    assert spec.context_window == 200_000
    # Anthropic bills prompt-cache writes at 1.25x input (2x for the 1-hour cache): the router gives
    # written prices without them those rates, as it does a registry built in Python.
    with Router.from_config(path) as router:
        billed = router.registry["o"].prices
    assert billed == ModelPrices(input=1, output=1, cache_write=1.25, cache_write_1h=2)


def test_written_long_context_prices_apply_above_their_threshold(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        LOCAL + '[[models]]\nid = "big"\nprovider = "local"\nmodel = "big"\ntier = 1\n'
        "prices = {input = 1, output = 2, long_context = [{above = 1000, input = 3, output = 4}]}\n",
    )
    spec = load_config(path).registry()["big"]
    assert spec.estimate_cost(1000, 100) == pytest.approx((1000 * 1 + 100 * 2) / 1e6)
    assert spec.estimate_cost(1001, 100) == pytest.approx((1001 * 3 + 100 * 4) / 1e6)


def test_written_anthropic_long_context_tiers_bill_cache_writes_as_anthropic_does(tmp_path: Path) -> None:
    """A written tier without cache-write prices billed a write at the tier's plain input rate."""
    path = write(
        tmp_path,
        '[[models]]\nid = "o"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\ntier = 3\n'
        "prices = {input = 3, output = 15, long_context = [{above = 200000, input = 6, output = 22.5}]}\n",
    )
    with Router.from_config(path) as router:
        spec = router.registry["o"]
    (tier,) = spec.prices.long_context
    assert (tier.cache_write, tier.cache_write_1h) == (7.5, 12.0)
    written = Usage(300_000, 0, cache_write_tokens=300_000, cache_write_1h_tokens=100_000)
    assert spec.cost(written) == pytest.approx((200_000 * 7.5 + 100_000 * 12.0) / 1e6)


def test_long_context_tiers_out_of_order_name_the_key(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        LOCAL + '[[models]]\nid = "big"\nprovider = "local"\nmodel = "big"\ntier = 1\n'
        "prices = {input = 1, output = 2, long_context = [{above = 9, input = 3, output = 4}, "
        "{above = 5, input = 3, output = 4}]}\n",
    )
    assert error.key == "models[0].prices.long_context"
    assert "ascending" in str(error)


def test_model_genai_prices_does_not_know_needs_prices(tmp_path: Path) -> None:
    error = config_error(
        tmp_path, LOCAL + '[[models]]\nid = "ft"\nprovider = "local"\nmodel = "my-finetune"\ntier = 1\n'
    )
    assert error.key == "models[0].prices"
    assert "set models[0].prices = {input = .., output = ..} (dollars per million tokens)" in str(error)


def test_a_local_server_does_not_borrow_the_vendors_prices(tmp_path: Path) -> None:
    # gpt-oss-20b has an OpenAI list price, but served from localhost it costs nothing we can know.
    error = config_error(
        tmp_path, LOCAL + '[[models]]\nid = "oss"\nprovider = "local"\nmodel = "gpt-oss-20b"\ntier = 1\n'
    )
    assert error.key == "models[0].prices"


def test_default_ladder_has_three_tiers_each_served_by_both_vendors() -> None:
    registry = load_config().registry()
    assert registry.tiers == (1, 2, 3)
    for tier in registry.tiers:
        assert {m.provider for m in registry.in_tier(tier)} == {"openai", "anthropic"}
    for spec in registry:
        assert spec.prices == lookup_prices(spec.provider, spec.model)
        assert spec.supports_tools
        assert spec.supports_vision
        assert spec.supports_json
        assert spec.max_output_tokens is not None
        assert spec.max_output_tokens < spec.context_window
    assert registry.cheapest.id == "gpt-5-nano"
    assert registry.strongest.id == "gpt-5"


def test_no_models_in_the_file_means_the_default_ladder_with_the_files_providers(tmp_path: Path) -> None:
    path = write(tmp_path, '[providers.openai]\nbase_url = "https://proxy.example/v1"\ntimeout = 5\n')
    config = load_config(path)
    assert {m.id for m in config.models} == {entry.id for entry in DEFAULT_LADDER}
    openai = config.providers["openai"]
    assert openai.base_url == "https://proxy.example/v1"
    assert openai.timeout == 5
    # Overriding a built-in provider keeps the fields the table does not set.
    assert openai.api_key_env == "OPENAI_API_KEY"
    assert openai.max_tokens_field == "max_completion_tokens"
    assert config.providers["anthropic"] == BUILTIN_PROVIDERS["anthropic"]


def test_default_output_tokens_matches_the_routing_default() -> None:
    from gearshift.routing._decide import DEFAULT_OUTPUT_TOKENS

    assert load_config().routing.default_output_tokens == DEFAULT_OUTPUT_TOKENS


# -- routing and log sections ----------------------------------------------------------------------


def test_routing_section_keeps_rules_and_scorer_tables_for_their_policies(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [routing]
        policy = "rules"
        cooldown_seconds = 5
        max_cooldown_seconds = 60
        fallback_to_lower_tiers = true
        scorer = { code_weight = 0.4 }

        [[routing.rules]]
        when = { step = "plan" }
        tier = 3
        """,
    )
    routing = load_config(path).routing
    assert routing.policy == "rules"
    assert routing.rules == ({"when": {"step": "plan"}, "tier": 3},)
    assert routing.scorer == {"code_weight": 0.4}
    assert (routing.cooldown_seconds, routing.max_cooldown_seconds, routing.fallback_to_lower_tiers) == (
        5,
        60,
        True,
    )


def test_log_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, '[log]\npath = "logs/decisions.db"\ninclude_prompts = true\n')
    log = load_config(path).log
    assert log.path == folder / "logs" / "decisions.db"
    assert log.include_prompts is True
    assert load_config().log.path is None


def test_config_is_frozen() -> None:
    config = load_config()
    with pytest.raises(ValidationError, match="frozen"):
        config.routing = config.routing  # type: ignore[misc]


def test_models_built_in_python_must_name_a_declared_provider() -> None:
    spec = ModelSpec(id="x", provider="nowhere", model="x", tier=0, prices=ModelPrices(input=0, output=0))
    with pytest.raises(ConfigError, match="provider 'nowhere' is not declared") as caught:
        GearshiftConfig.from_dict({"models": [spec]})
    assert caught.value.key == "models[0].provider"


def test_header_values_stay_out_of_the_repr(tmp_path: Path) -> None:
    path = write(tmp_path, LOCAL + 'headers = { Helicone-Auth = "Bearer sk-helicone-Secret" }\n' + model())
    config = load_config(path)
    assert config.providers["local"].headers == {"Helicone-Auth": "Bearer sk-helicone-Secret"}
    assert "sk-helicone-Secret" not in repr(config)


def test_from_dict_for_config_built_in_python() -> None:
    config = GearshiftConfig.from_dict({"routing": {"fallback_to_lower_tiers": True}})
    assert config.source == "<python>"
    assert config.routing.fallback_to_lower_tiers
    with pytest.raises(ConfigError, match=r"<python>, key 'routing.policy'"):
        GearshiftConfig.from_dict({"routing": {"policy": "x"}})


# -- the example files ----------------------------------------------------------------------------


def test_example_full_config_loads() -> None:
    config = load_config(EXAMPLES / "gearshift.toml")
    registry = config.registry()
    assert len(registry.tiers) >= 3
    assert {m.provider for m in registry} == {"openai", "anthropic", "ollama"}
    assert registry.cheapest.prices == ModelPrices(input=0, output=0)
    assert config.providers["ollama"].require_key is False
    # The example writes no file beside itself: its log path is left commented out.
    assert config.log.path is None


def test_example_local_config_is_keyless_and_free(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(EXAMPLES / "ollama.toml")
    assert all(m.prices == ModelPrices(input=0, output=0) for m in config.models)
    assert {m.provider for m in config.models} == {"ollama", "lmstudio", "vllm"}
    assert missing_keys(config) == {}
    assert config.routing.fallback_to_lower_tiers


# -- providers built from the config -----------------------------------------------------------------


def test_missing_keys_lists_only_needed_providers_without_their_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "set")
    assert missing_keys(load_config()) == {"openai": "OPENAI_API_KEY"}
    monkeypatch.setenv("OPENAI_API_KEY", "")  # empty counts as unset
    assert missing_keys(load_config()) == {"openai": "OPENAI_API_KEY"}
    # Only the keyless local provider serves a model: the unset OpenAI key does not matter.
    assert missing_keys(load_config(write(tmp_path, LOCAL + model()))) == {}


def test_build_providers_builds_one_per_used_provider_by_kind(tmp_path: Path) -> None:
    path = write(tmp_path, LOCAL + model() + model("c", provider="anthropic"))
    providers = build_providers(load_config(path))
    assert set(providers) == {"local", "anthropic"}  # `openai` serves no model here
    assert isinstance(providers["local"], OpenAIProvider)
    assert providers["local"].name == "local"
    assert isinstance(providers["anthropic"], AnthropicProvider)


async def test_openai_kind_provider_is_wired_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_server: LocalOpenAIServer
) -> None:
    monkeypatch.setenv("GS_TEST_OPENAI_KEY", OPENAI_KEY)
    path = write(
        tmp_path,
        f"""
        [providers.gateway]
        kind = "openai"
        base_url = "{openai_server.base_url}"
        api_key_env = "GS_TEST_OPENAI_KEY"
        max_tokens_field = "max_completion_tokens"
        headers = {{ X-Team = "routing" }}
        timeout = 5

        [[models]]
        id = "gw-small"
        provider = "gateway"
        model = "small"
        tier = 1
        prices = {{ input = 1, output = 1 }}
        """,
    )
    config = load_config(path)
    provider = build_providers(config)["gateway"]
    assert isinstance(provider, OpenAIProvider)
    try:
        request = ChatRequest(messages=(Message.user("hello"),), max_tokens=30)
        response = await provider.complete(config.registry()["gw-small"], request)
    finally:
        await provider.aclose()
    assert response.text
    sent = openai_server.requests[-1]
    assert sent.headers["x-team"] == "routing"
    assert sent.body["max_completion_tokens"] == 30
    assert "max_tokens" not in sent.body


async def test_anthropic_kind_provider_is_wired_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anthropic_server: LocalAnthropicServer
) -> None:
    monkeypatch.setenv("GS_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    path = write(
        tmp_path,
        f"""
        [providers.claude]
        kind = "anthropic"
        base_url = "{anthropic_server.base_url}"
        api_key_env = "GS_TEST_ANTHROPIC_KEY"
        headers = {{ X-Team = "routing" }}

        [[models]]
        id = "c"
        provider = "claude"
        model = "claude-small"
        tier = 1
        prices = {{ input = 1, output = 1 }}
        """,
    )
    config = load_config(path)
    provider = build_providers(config)["claude"]
    assert isinstance(provider, AnthropicProvider)
    try:
        response = await provider.complete(
            config.registry()["c"], ChatRequest(messages=(Message.user("hello"),))
        )
    finally:
        await provider.aclose()
    assert response.text
    assert anthropic_server.requests[-1].headers["x-team"] == "routing"


def test_a_problem_in_a_policy_table_names_its_line(tmp_path: Path) -> None:
    # [routing.scorer] is validated when the router builds the scorer, after the file has loaded.
    path = write(
        tmp_path,
        '[routing]\npolicy = "scorer"\n\n[routing.scorer]\nthresholds = [0.3, 0.6]\ncode_weight = 2\n',
    )
    with pytest.raises(ConfigError) as caught:
        Router.from_config(path)
    assert (caught.value.source, caught.value.line, caught.value.key) == (
        str(path),
        6,
        "routing.scorer.code_weight",
    )
    assert str(caught.value).startswith(f"{path}, line 6, key 'routing.scorer.code_weight': ")


@pytest.mark.parametrize(
    ("table", "line", "key", "problem"),
    [
        (
            '[log]\npath = "d.jsonl"\ninclude_prompts = true\n[routing.shadow]\nshare = 2\n',
            5,
            "routing.shadow.share",
            "must be <= 1, got 2",
        ),
        (
            "[routing.cascade]\njudge_threshold = 7\n",
            2,
            "routing.cascade.judge_threshold",
            "must be <= 1, got 7",
        ),
        (
            '[routing]\npolicy = "classifier"\n[routing.classifier]\nmodel = "m"\ntimeout = -1\n',
            5,
            "routing.classifier.timeout",
            "must be > 0, got -1",
        ),
        (
            '[routing.scorer]\ncode_weight = "high"\n',
            2,
            "routing.scorer.code_weight",
            'must be a number, got "high"',
        ),
    ],
)
def test_a_policy_tables_value_is_faulted_in_the_files_words(
    tmp_path: Path, table: str, line: int, key: str, problem: str
) -> None:
    # These tables are validated by the part they configure, which echoed pydantic instead:
    # "Input should be less than or equal to 1", without the value that was written.
    path = write(tmp_path, LOCAL + model() + table)
    with pytest.raises(ConfigError) as caught:
        Router.from_config(path)
    offset = len((LOCAL + model()).splitlines())
    assert (caught.value.line, caught.value.key) == (offset + line, key)
    assert str(caught.value).endswith(f"key '{key}': {problem}")
