"""The example configs stay valid and leave no files where the user did not ask: `examples/gearshift.toml`
builds a router offline with every setting it shows, and its commented-out settings validate too."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as the core's fallback
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

from gearshift import GearshiftConfig, Router, load_config
from gearshift.budgets._settings import default_store_url
from gearshift.cascades import CascadeConfig
from gearshift.cli import main
from gearshift.config._data_dir import data_dir
from gearshift.escalation._live import EscalationConfig
from gearshift.learning._policy import LearnedConfig
from gearshift.policies._classifier import ClassifierConfig
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
    assert config.log.path == EXAMPLES / "decisions.jsonl"  # relative paths start at the file's folder
    assert config.models[-1].prices.long_context  # the commented prices line parsed with its tier


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
