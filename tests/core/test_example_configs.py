"""The example configs stay valid and leave no files where the user did not ask: `examples/gearshift.toml`
builds a router offline with every setting it shows, and its commented-out settings validate too."""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as the core's fallback
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

from gearshift import GearshiftConfig, Router, RulesPolicy, ScorerConfig, SignalScorer, load_config
from gearshift.budgets._settings import default_store_url
from gearshift.cascades import CascadeConfig
from gearshift.cli import main
from gearshift.config._data_dir import data_dir
from gearshift.escalation._live import EscalationConfig
from gearshift.learning._policy import LearnedConfig
from gearshift.policies._classifier import ClassifierConfig
from gearshift.policies._rules import Rule
from gearshift.routing._shadow import ShadowConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FULL = EXAMPLES / "gearshift.toml"
# A commented-out TOML line of the example: a table header or `key = value` right after "# ".
_COMMENTED_SETTING = re.compile(r"^# ?(\[\[?[\w.-]+\]\]?\s*(#.*)?|[\w-]+ = .+)$")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEARSHIFT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEARSHIFT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def _files() -> set[str]:
    return {p.name for p in EXAMPLES.iterdir()}


def test_the_full_example_builds_a_router_with_every_setting_it_shows() -> None:
    before = _files()
    config = load_config(FULL)
    with Router.from_config(config) as router:
        decision = router.decide("What is 2+2?")
        assert decision.model in router.registry
        assert router.self_escalation and router.max_escalations == 2
        assert router.cascade is not None
        assert router.budgets is not None
        assert router.prefer == "cost"
    assert config.budgets is not None and len(config.budgets.limits) == 2
    assert config.budgets.store == default_store_url()  # unset: the data folder, not beside the file
    assert default_store_url().startswith(f"sqlite:///{data_dir()}")
    assert [m.id for m in config.models if m.deployments] == ["gpt-5-mini"]
    assert config.routing.tasks == {"code": "claude-sonnet", "summarize": 1}
    assert _files() == before


def test_every_commented_setting_of_the_full_example_is_valid() -> None:
    text = FULL.read_text()
    # Not the proxy base_url of [providers.openai]: behind a proxy genai-prices cannot price the vendor's
    # models, so that line goes with prices on each model (the example says so).
    lines = [
        line[2:] if _COMMENTED_SETTING.match(line) and "my-proxy" not in line else line
        for line in text.splitlines()
    ]
    data = tomllib.loads("\n".join(lines))
    routing = data["routing"]
    assert {"learned", "escalation", "classifier", "shadow", "rules", "scorer"} <= routing.keys()
    assert data["log"]["path"] == "decisions.jsonl" and "store" in data["budgets"]
    config = GearshiftConfig.from_dict(data, source=str(FULL), base_dir=EXAMPLES)
    source = str(FULL)
    LearnedConfig.validate_table(routing["learned"], source=source, key="routing.learned")
    EscalationConfig.validate_table(routing["escalation"], source=source, key="routing.escalation")
    ClassifierConfig.from_config(routing["classifier"], source=source)
    ShadowConfig.from_config(routing["shadow"], source=source)
    CascadeConfig.from_config(routing["cascade"], source=source)
    ScorerConfig.from_config(routing["scorer"])
    registry = config.registry()
    RulesPolicy.from_config(routing["rules"], fallback=SignalScorer(), source=source, registry=registry)
    assert config.log.path == EXAMPLES / "decisions.jsonl"  # relative paths start at the file's folder
    assert config.models[-1].prices.long_context  # the commented prices line parsed with its tier


def _setting_keys(model: type[BaseModel], prefix: str) -> Iterator[str]:
    """Every key a config model accepts, dotted, with those of the models nested in it."""
    for name, field in model.model_fields.items():
        yield prefix + name
        nested = [a for a in (field.annotation, *_args_of(field.annotation)) if _is_model(a)]
        for inner in nested:
            yield from _setting_keys(inner, f"{prefix}{name}.")


def _args_of(annotation: object) -> tuple[object, ...]:
    args = typing.get_args(annotation)
    return tuple(inner for arg in args for inner in (arg, *_args_of(arg)))


def _is_model(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def test_the_full_example_shows_every_setting_the_config_accepts() -> None:
    # The README says the example "shows every setting": a key the config takes and the example never
    # names is one a reader of the example cannot find.
    text = FULL.read_text()
    headers = re.findall(r"^#? ?\[\[?([\w.-]+)\]", text, re.MULTILINE)  # [routing.cascade], [[models]]
    shown = set(re.findall(r"\b(\w+) = ", text)) | {part for header in headers for part in header.split(".")}
    tables = {
        "": GearshiftConfig,
        "routing.shadow.": ShadowConfig,
        "routing.rules.": Rule,
        "routing.classifier.": ClassifierConfig,
        "routing.scorer.": ScorerConfig,
        "routing.cascade.": CascadeConfig,
        "routing.learned.": LearnedConfig,
        "routing.escalation.": EscalationConfig,
    }
    keys = [key for prefix, model in tables.items() for key in _setting_keys(model, prefix)]
    assert len(keys) > 100
    assert [key for key in keys if key.rsplit(".", 1)[-1] not in shown] == []


def test_the_local_example_leaves_nothing_beside_it(capsys: pytest.CaptureFixture[str]) -> None:
    before = _files()
    config = load_config(EXAMPLES / "ollama.toml")
    assert config.log.path is None
    assert main(["route", "Why is the sky blue?", "--config", str(EXAMPLES / "ollama.toml")]) == 0
    assert _files() == before


def test_gearshift_home_moves_the_files_gearshift_names_itself(tmp_path: Path) -> None:
    from gearshift.budgets._journal import default_journal_path
    from gearshift.cli._demo import default_log_path

    home = tmp_path / "home"
    assert data_dir() == home
    assert default_store_url() == f"sqlite:///{home / 'budgets.db'}"
    assert default_log_path().is_relative_to(home)
    assert default_journal_path("redis://localhost:6379/0").is_relative_to(home)
