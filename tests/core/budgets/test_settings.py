"""`[budgets]` in gearshift.toml: defaults, and config errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gearshift import ConfigError
from gearshift.budgets import BudgetMode, BudgetsConfig, MemoryStore, Window, open_store
from gearshift.budgets._settings import default_store_url, load_budgets_config

LIMIT = {"key": "run:*", "usd": 1.0}


def test_defaults_keep_spend_in_sqlite_under_the_user_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs import user_data_dir

    monkeypatch.delenv("GEARSHIFT_HOME", raising=False)  # the suite's own folder (tests/conftest.py)

    config = BudgetsConfig()
    assert config.store == default_store_url()
    assert config.store == f"sqlite:///{Path(user_data_dir('gearshift')) / 'budgets.db'}"
    assert config.store.startswith("sqlite:////")  # an absolute path after sqlite:///
    assert (config.reservation_ttl_seconds, config.fail_open, config.timezone) == (600.0, False, "UTC")
    assert (config.expected_steps, config.limits) == (None, ())
    assert config.wait_seconds == 30.0


def test_a_full_section_validates() -> None:
    config = BudgetsConfig.from_dict(
        {
            "store": "redis://localhost:6379/2",
            "reservation_ttl_seconds": 120,
            "fail_open": True,
            "timezone": "Europe/Paris",
            "expected_steps": 12,
            "limits": [
                {"key": "agent:*", "usd": 5, "window": "day"},
                {"key": "run:*", "tokens": 50_000, "mode": "downgrade", "name": "run tokens"},
            ],
        },
        source="gearshift.toml",
    )
    assert config.store == "redis://localhost:6379/2"
    assert config.reservation_ttl_seconds == 120.0
    first, second = config.limits
    assert (first.usd, first.window, first.mode) == (5.0, Window("day"), BudgetMode.HARD)
    assert (second.tokens, second.mode, second.name) == (50_000, BudgetMode.DOWNGRADE, "run tokens")


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ({"limits": [LIMIT, {"key": "run:*", "usd": -1}]}, "budgets.limits[1].usd", "must be >= 0, got -1"),
        (
            {"limits": [{"key": "run:*", "usd": "ten"}]},
            "budgets.limits[0].usd",
            'must be a number, got "ten"',
        ),
        ({"limits": [{"key": "run:*", "usd": "5"}]}, "budgets.limits[0].usd", 'must be a number, got "5"'),
        # 1e300 dollars overflowed the stores' nano-dollars: every call refused as if the store were down.
        (
            {"limits": [{"key": "run:*", "usd": 1e300}]},
            "budgets.limits[0].usd",
            "must be <= 1000000000, got 1e+300",
        ),
        ({"limits": [{"key": "run:*", "usd": float("nan")}]}, "budgets.limits[0].usd", "must be a finite"),
        ({"limits": [{"key": "run:*", "tokens": 1.5}]}, "budgets.limits[0].tokens", "must be an integer"),
        ({"limits": [{"key": "run:*", "tokens": -3}]}, "budgets.limits[0].tokens", "must be >= 0"),
        ({"limits": [{"key": "run:*"}]}, "budgets.limits[0]", "a limit needs usd, tokens or both"),
        # A misspelt cap was reported as no cap at all, at the table's line, not the typo's.
        ({"limits": [{"key": "run:*", "usdd": 5}]}, "budgets.limits[0].usdd", "did you mean 'usd'"),
        ({"limits": [{"key": "run:*", "tokenz": 5}]}, "budgets.limits[0].tokenz", "did you mean 'tokens'"),
        (
            {"limits": [{"key": "run:*", "usd": 1, "window": "week"}]},
            "budgets.limits[0].window",
            "unknown window 'week'; use lifetime, day, month or rolling",
        ),
        (
            {"limits": [{"key": "run:*", "usd": 1, "mode": "hardish"}]},
            "budgets.limits[0].mode",
            "unknown mode 'hardish'; use hard, soft or downgrade",
        ),
        ({"limits": [{"usd": 1}]}, "budgets.limits[0].key", "is required"),
        (
            {"limits": [{"key": "run:*", "usd": 1, "windw": "day"}]},
            "budgets.limits[0].windw",
            "did you mean 'window'",
        ),
        (
            {"limits": [LIMIT, LIMIT]},
            "budgets.limits[1].name",
            "limits[0] is already named 'run:* lifetime hard'",
        ),
        ({"store": "postgres://db/x"}, "budgets.store", "unknown budget store URL"),
        ({"store": "sqlite://"}, "budgets.store", "sqlite:/// followed by a file path"),
        ({"store": "memory://x"}, "budgets.store", "takes nothing after memory://"),
        ({"store": "redis://:6379/0"}, "budgets.store", "needs a host"),
        ({"timezone": "Mars/Olympus"}, "budgets.timezone", "unknown time zone 'Mars/Olympus'"),
        ({"reservation_ttl_seconds": 0}, "budgets.reservation_ttl_seconds", "must be >= 1"),
        ({"reservation_ttl_seconds": 1e-9}, "budgets.reservation_ttl_seconds", "must be >= 1"),
        ({"reservation_ttl_seconds": 1e9}, "budgets.reservation_ttl_seconds", "must be <= 86400"),
        ({"reservation_ttl_seconds": "10m"}, "budgets.reservation_ttl_seconds", "must be a number"),
        ({"wait_seconds": -1}, "budgets.wait_seconds", "must be >= 0"),
        ({"wait_seconds": 7200}, "budgets.wait_seconds", "must be <= 3600"),
        ({"fail_open": "yes"}, "budgets.fail_open", "must be true or false"),
        ({"expected_steps": 0}, "budgets.expected_steps", "must be > 0"),
        ({"limit": []}, "budgets.limit", "did you mean 'limits'"),
    ],
)
def test_bad_values_name_the_key(section: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        BudgetsConfig.from_dict(section, source="gearshift.toml")
    assert caught.value.key == key
    assert caught.value.source == "gearshift.toml"
    assert message in str(caught.value)


def test_a_redis_password_never_appears_in_a_store_error() -> None:
    with pytest.raises(ConfigError) as caught:
        BudgetsConfig.from_dict({"store": "redis://:hunter2-secret@cache:notaport/0"})
    assert "hunter2-secret" not in str(caught.value)
    assert "is not a number" in str(caught.value)


def test_a_redis_password_stays_out_of_reprs() -> None:
    config = BudgetsConfig.from_dict({"store": "redis://:hunter2-secret@cache:6379/0"})
    assert config.store == "redis://:hunter2-secret@cache:6379/0"  # the store needs it
    assert "hunter2-secret" not in repr(config) and "hunter2-secret" not in str(config)
    assert "redis://:***@cache:6379/0" in repr(config)


def test_the_json_schema_shows_windows_as_strings() -> None:
    window = BudgetsConfig.model_json_schema()["$defs"]["BudgetLimit"]["properties"]["window"]
    assert (window["type"], window["default"]) == ("string", "lifetime")


def test_relative_sqlite_paths_start_at_the_config_folder(tmp_path: Path) -> None:
    config = BudgetsConfig.from_dict({"store": "sqlite:///data/budgets.db"}, base_dir=tmp_path)
    assert config.store == f"sqlite:///{tmp_path / 'data' / 'budgets.db'}"
    absolute = BudgetsConfig.from_dict({"store": f"sqlite:///{tmp_path}/b.db"}, base_dir="/elsewhere")
    assert absolute.store == f"sqlite:///{tmp_path}/b.db"


def test_open_store_dispatches_on_the_url() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    with pytest.raises(ConfigError) as caught:
        open_store("mysql://db", source="g.toml")
    assert (caught.value.key, caught.value.source) == ("budgets.store", "g.toml")


def test_load_returns_the_budgets_section_of_a_valid_file(tmp_path: Path) -> None:
    file = tmp_path / "gearshift.toml"
    file.write_text(
        '[routing]\npolicy = "scorer"\n\n[budgets]\nstore = "memory://"\n\n'
        '[[budgets.limits]]\nkey = "agent:*"\nusd = 2.0\nwindow = "day"\n'
    )
    config, source = load_budgets_config(file)
    assert source == str(file)
    assert config.store == "memory://" and config.limits[0].key == "agent:*"


def test_load_names_the_file_in_errors(tmp_path: Path) -> None:
    file = tmp_path / "gearshift.toml"
    file.write_text('[[budgets.limits]]\nkey = "run:*"\nusd = -2\n')
    with pytest.raises(ConfigError) as caught:
        load_budgets_config(file)
    assert caught.value.source == str(file) and caught.value.key == "budgets.limits[0].usd"
    file.write_text('budgets = "everything"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        load_budgets_config(file)


def test_without_a_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    config, source = load_budgets_config()
    assert (config, source) == (BudgetsConfig(), "<defaults>")


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "must not be empty"), ("two words", "no spaces, got 'two words'"), (7, "must be a string")],
)
def test_a_bad_default_agent_names_the_key(value: object, message: str) -> None:
    assert BudgetsConfig().default_agent == "anonymous"
    assert BudgetsConfig.from_dict({"default_agent": "guest"}).default_agent == "guest"
    with pytest.raises(ConfigError) as caught:
        BudgetsConfig.from_dict({"default_agent": value}, source="gearshift.toml")
    assert caught.value.key == "budgets.default_agent"
    assert message in str(caught.value)
