"""`gearshift budget show` and `gearshift budget reset`, against a SQLite ledger file on disk."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from gearshift import ConfigError
from gearshift._bridge import run_sync
from gearshift._errors import LedgerUnavailable
from gearshift.budgets import BudgetLedger, BudgetsConfig
from gearshift.budgets._cli import add_budget_parser, run_budget
from gearshift.budgets._journal import JournaledSpend, SpendJournal
from gearshift.config._data_dir import HOME_ENV

CONFIG = """\
[budgets]
store = "sqlite:///ledger/budgets.db"

[[budgets.limits]]
key = "agent:*"
usd = 2.0
window = "day"

[[budgets.limits]]
name = "search team tokens"
key = "team:search"
tokens = 50000
mode = "soft"

[[budgets.limits]]
key = "team:idle"
usd = 1.0
"""


def budget(argv: Sequence[str]) -> int:
    """What `gearshift budget ...` runs, with the parser the lead wires into `gearshift`."""
    parser = argparse.ArgumentParser(prog="gearshift")
    add_budget_parser(parser.add_subparsers(dest="command", required=True))
    return run_budget(parser.parse_args(["budget", *argv]))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    file = tmp_path / "gearshift.toml"
    file.write_text(CONFIG)
    (tmp_path / "ledger").mkdir()  # a folder the config names is the user's to make
    return file


@pytest.fixture
def spent(config_file: Path) -> Path:
    """The ledger of `config_file` after one call of agent:researcher in run:7 for the search team."""
    config = BudgetsConfig.from_dict({"store": "sqlite:///ledger/budgets.db"}, base_dir=config_file.parent)
    ledger = BudgetLedger.from_config(config)

    async def record() -> None:
        done = await ledger.reserve(("agent:researcher", "run:7", "team:search"), usd=0.5, tokens=4000)
        await ledger.commit(done, usd=0.4, tokens=3200)
        await ledger.reserve(("agent:researcher", "run:7", "team:search"), usd=0.1, tokens=900)
        # That call is still running: its reservation stays held. The ledger's own close would wait
        # CLOSE_WAIT_SECONDS (5 s, each test) for it to settle; the store is closed instead.
        await ledger.store.aclose()

    run_sync(record())
    return config_file


def test_show_json_lists_every_key_and_limit(spent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert budget(["show", "--config", str(spent), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["store"] == f"sqlite:///{spent.parent / 'ledger' / 'budgets.db'}"
    rows = {row["key"]: row for row in shown["keys"]}
    assert list(rows) == ["agent:researcher", "run:7", "team:idle", "team:search"]
    agent = rows["agent:researcher"]
    assert (agent["spent_usd"], agent["spent_tokens"], agent["reserved_usd"]) == (0.4, 3200, 0.1)
    (daily,) = agent["limits"]
    assert (daily["name"], daily["window"], daily["mode"], daily["limit_usd"]) == (
        "agent:* day hard",
        "day",
        "hard",
        2.0,
    )
    assert daily["remaining_usd"] == pytest.approx(1.5)
    assert rows["run:7"]["limits"] == []  # spend without a limit is still shown
    (tokens,) = rows["team:search"]["limits"]
    assert (tokens["name"], tokens["remaining_tokens"]) == ("search team tokens", 50000 - 3200 - 900)
    assert rows["team:idle"]["spent_usd"] == 0.0  # a limit on an exact key shows before any spend


def test_show_prints_a_table_for_people(
    spent: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # the table fits a classic terminal without wrapping
    assert budget(["show", "--config", str(spent)]) == 0
    out = capsys.readouterr().out
    for header in ("key", "limit", "window", "mode", "spent", "reserved", "left"):
        assert header in out
    agent = next(line for line in out.splitlines() if "agent:researcher" in line)
    for cell in ("$2.00", "day", "hard", "$0.40", "$0.10", "$1.50"):
        assert cell in agent
    team = next(line for line in out.splitlines() if "team:search" in line)
    for cell in ("50k tok", "soft", "3.2k tok", "900 tok", "45.9k tok"):
        assert cell in team
    run = next(line for line in out.splitlines() if "run:7" in line)
    assert run.split() == ["run:7", "none", "lifetime", "-", "$0.40", "$0.10", "-"]


def test_show_reports_spend_still_in_the_journal(
    spent: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = SpendJournal(spent.parent / "ledger" / "budgets.db.pending-spend.jsonl")
    journal.append(JournaledSpend("r1", ("agent:researcher", "run:7"), 0.25, 900, 1_700_000_000.0))
    journal.append(JournaledSpend("r2", ("agent:researcher",), 0.5, 100, 1_700_000_001.0))
    assert budget(["show", "--config", str(spent), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["journaled"]
    assert shown == {
        "path": str(journal.path),
        "calls": 2,
        "usd": 0.75,
        "tokens": 1000,
        "keys": {"agent:researcher": 0.75, "run:7": 0.25},
    }
    assert budget(["show", "--config", str(spent), "--key", "run:7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["journaled"]["usd"] == 0.25
    monkeypatch.setenv("COLUMNS", "200")
    assert budget(["show", "--config", str(spent)]) == 0
    out = capsys.readouterr().out
    assert "Not yet in the store: $0.75 over 2 calls (agent:researcher, run:7)" in out


def test_show_names_journaled_spend_even_when_the_store_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "gearshift.toml"
    file.write_text('[budgets]\nstore = "sqlite:///broken.db"\n')
    (tmp_path / "broken.db").mkdir()  # no SQLite file can be opened there
    SpendJournal(tmp_path / "broken.db.pending-spend.jsonl").append(
        JournaledSpend("r1", ("run:7",), 0.25, 900, 1_700_000_000.0)
    )
    with pytest.raises(LedgerUnavailable):
        budget(["show", "--config", str(file)])
    assert "Not yet in the store: $0.25 over 1 call (run:7)" in capsys.readouterr().err


def test_show_one_key(spent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert budget(["show", "--config", str(spent), "--key", "run:7", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["keys"]
    assert (row["key"], row["spent_tokens"]) == ("run:7", 3200)


def test_show_an_empty_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "gearshift.toml"
    file.write_text('[budgets]\nstore = "sqlite:///empty.db"\n')
    ledger = BudgetLedger.from_config(
        BudgetsConfig.from_dict({"store": "sqlite:///empty.db"}, base_dir=tmp_path)
    )

    async def open_it() -> None:  # the file exists, as once any call went through it
        assert not await ledger.keys()
        await ledger.aclose()

    run_sync(open_it())
    assert budget(["show", "--config", str(file)]) == 0
    assert "No spend recorded in sqlite:///" in capsys.readouterr().out


@pytest.mark.parametrize("config_text", [None, '[routing]\npolicy = "scorer"\n'])
def test_without_budgets_show_creates_nothing_and_says_so(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config_text: str | None,
) -> None:
    # It opened the default ledger, creating an empty budgets.db in the data folder, and printed
    # "No spend recorded in sqlite:///...", as if calls were charged there: without [budgets] none is.
    home = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(home))
    monkeypatch.delenv("GEARSHIFT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = ["--config", str(tmp_path / "gearshift.toml")] if config_text is not None else []
    if config_text is not None:
        (tmp_path / "gearshift.toml").write_text(config_text)
    assert budget(["show", *argv]) == 0
    where = (
        f"{tmp_path / 'gearshift.toml'} has"
        if config_text is not None
        else "no config file was found, so there is"
    )
    assert capsys.readouterr().out.startswith(f"No budgets: {where} no [budgets] section")
    assert budget(["show", "--json", *argv]) == 0
    assert json.loads(capsys.readouterr().out) == {"store": None, "keys": [], "journaled": None}
    assert budget(["reset", "--key", "run:7", "--yes", *argv]) == 1
    assert capsys.readouterr().err.startswith(f"No budgets: {where} no [budgets] section")
    assert not home.exists()  # no budgets.db, no journal folder
    assert [p.name for p in tmp_path.iterdir()] == (["gearshift.toml"] if config_text is not None else [])


@pytest.mark.parametrize("store", ["sqlite:///ledger/budgets.db", None])
def test_show_before_any_spend_creates_no_ledger_and_says_nothing_was_recorded_yet(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str | None
) -> None:
    # A read-only command created the SQLite file (schema and WAL included) to report it empty, and
    # reset created it to forget nothing: the next `ls` showed a ledger no call had written.
    home = config_file.parent / "home"
    monkeypatch.setenv(HOME_ENV, str(home))
    if store is None:  # the default store, in gearshift's data folder
        config_file.write_text(CONFIG.replace('store = "sqlite:///ledger/budgets.db"\n', ""))
    before = sorted(p.name for p in config_file.parent.rglob("*"))
    assert budget(["show", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No spend recorded yet: sqlite:///") and "does not exist" in out
    assert budget(["show", "--config", str(config_file), "--json", "--key", "agent:x"]) == 0
    shown = json.loads(capsys.readouterr().out)
    (row,) = shown["keys"]  # the key asked for, as from a ledger with nothing in it
    assert (row["key"], row["spent_usd"], row["spent_tokens"]) == ("agent:x", 0.0, 0)
    assert shown["store"].startswith("sqlite:///") and shown["journaled"]["calls"] == 0
    assert budget(["reset", "--key", "run:7", "--yes", "--config", str(config_file)]) == 1
    assert "nothing is recorded under key 'run:7'" in capsys.readouterr().err
    assert sorted(p.name for p in config_file.parent.rglob("*")) == before


def test_reset_with_yes_forgets_the_key(spent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert budget(["reset", "--key", "run:7", "--yes", "--config", str(spent)]) == 0
    assert "Reset 'run:7'." in capsys.readouterr().out
    budget(["show", "--config", str(spent), "--json"])
    keys = [row["key"] for row in json.loads(capsys.readouterr().out)["keys"]]
    assert keys == ["agent:researcher", "team:idle", "team:search"]


@pytest.mark.parametrize(("answer", "code", "kept"), [("y\n", 0, False), ("n\n", 1, True), ("", 1, True)])
def test_reset_asks_first(
    spent: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    kept: bool,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    assert budget(["reset", "--key", "agent:researcher", "--config", str(spent)]) == code
    out = capsys.readouterr().out
    assert "Forget all spend and reservations of 'agent:researcher'? [y/N]" in out
    budget(["show", "--config", str(spent), "--json"])
    keys = [row["key"] for row in json.loads(capsys.readouterr().out)["keys"]]
    assert ("agent:researcher" in keys) is kept


def test_reset_of_an_unknown_key_changes_nothing(spent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert budget(["reset", "--key", "run:8", "--yes", "--config", str(spent)]) == 1
    assert "nothing is recorded under key 'run:8'" in capsys.readouterr().err


def test_reset_needs_a_key() -> None:
    with pytest.raises(SystemExit):
        budget(["reset", "--yes"])


def test_a_bad_config_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    file = tmp_path / "gearshift.toml"
    file.write_text('[[budgets.limits]]\nkey = "run:*"\nusd = 1\nmode = "hardest"\n')
    with pytest.raises(ConfigError) as caught:
        budget(["show", "--config", str(file)])
    assert caught.value.key == "budgets.limits[0].mode"


@pytest.mark.parametrize(
    ("outside", "key"),
    [
        ('[routing]\npolicy = "scorer"\ncheap_first = true\n', "cheap_first"),  # an unknown key
        ("[log]\ninclude_prompts = 3\n", "log.include_prompts"),  # a wrong type
    ],
)
def test_show_refuses_a_file_other_commands_refuse_even_outside_budgets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], outside: str, key: str
) -> None:
    from gearshift import load_config
    from gearshift.cli import main

    file = tmp_path / "gearshift.toml"
    file.write_text('[budgets]\nstore = "sqlite:///empty.db"\n\n' + outside)
    with pytest.raises(ConfigError) as refused:
        load_config(file)
    for argv in (["show"], ["reset", "--key", "run:7", "--yes"]):
        assert main(["budget", *argv, "--config", str(file)]) == 2
        captured = capsys.readouterr()
        assert "No spend recorded" not in captured.out and "Traceback" not in captured.err
        assert str(refused.value).splitlines()[0] in captured.err and key in captured.err
    assert not (tmp_path / "empty.db").exists()
