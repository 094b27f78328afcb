"""Where budget files may be: a folder the user names must exist (as for the decision log), while
gearshift's own data folder (`$GEARSHIFT_HOME`) is created when the ledger or a journal needs it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gearshift import ConfigError, Router, load_config
from gearshift._errors import LedgerUnavailable
from gearshift.budgets import (
    BudgetLedger,
    BudgetLimit,
    BudgetsConfig,
    MemoryStore,
    UsageQuery,
)
from gearshift.budgets._journal import JournaledSpend, SpendJournal
from gearshift.budgets._redis import RedisStore
from gearshift.budgets._settings import load_budgets_config
from gearshift.budgets._sqlite import SQLiteStore

KEYS = ("agent:a", "run:1")


def files_under(folder: Path) -> list[Path]:
    """Everything below `folder`, so a test can tell nothing was created."""
    return sorted(folder.rglob("*"))


def budgets_toml(folder: Path, store: str) -> Path:
    config = folder / "gearshift.toml"
    config.write_text(f'[budgets]\nstore = "{store}"\n\n[[budgets.limits]]\nkey = "run:*"\nusd = 1.0\n')
    return config


async def test_a_typo_in_the_store_folder_is_refused_naming_the_key_and_leaves_the_spend_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "ledger").mkdir()
    right = budgets_toml(tmp_path, "sqlite:///ledger/budgets.db")
    ledger = BudgetLedger.from_config(load_budgets_config(right)[0])
    spent = await ledger.reserve(KEYS, usd=0.5, tokens=10)
    await ledger.commit(spent, usd=0.4, tokens=8)
    await ledger.aclose()
    waiting = JournaledSpend("r-kept", KEYS, 0.05, 1, 1_700_000_000.0)  # spend the store has yet to take
    SpendJournal(tmp_path / "ledger" / "budgets.db.pending-spend.jsonl").append(waiting)
    before = files_under(tmp_path)

    typo = budgets_toml(tmp_path, "sqlite:///ledgr/budgets.db")
    with pytest.raises(ConfigError, match="does not exist") as by_router:
        Router.from_config(load_config(typo))
    with pytest.raises(ConfigError, match="does not exist") as by_cli:  # what `gearshift budget` reads
        load_budgets_config(typo)
    for caught in (by_router.value, by_cli.value):
        assert (caught.key, caught.source, caught.line) == ("budgets.store", str(typo), 2)
        assert f"the folder {str(tmp_path / 'ledgr')!r} does not exist (create it first)" in str(caught)
        assert str(tmp_path / "ledgr" / "budgets.db") in str(caught)
    assert files_under(tmp_path) == before  # no folder, no ledger, no journal, no lock file

    budgets_toml(tmp_path, "sqlite:///ledger/budgets.db")
    again = BudgetLedger.from_config(load_budgets_config(right)[0])
    try:
        assert await again.journaled() == (waiting,)
        assert await again.replay_journal() == 1
        (usage,) = await again.store.usage([UsageQuery("run:1", 0.0)], now=1_800_000_000.0)
        assert (round(usage.spent_usd, 9), usage.spent_tokens) == (0.45, 9)
    finally:
        await again.aclose()


async def test_a_store_built_in_python_in_a_missing_folder_is_refused_when_built(tmp_path: Path) -> None:
    # Refused now, not on the first call as a store that "cannot be reached", whose advice (turn
    # budgets.fail_open on) would be wrong for a typo.
    path = tmp_path / "typo" / "budgets.db"
    with pytest.raises(ConfigError) as caught:
        SQLiteStore(path)
    assert caught.value.key == "path"
    assert f"the folder {str(path.parent)!r} does not exist (create it first)" in str(caught.value)
    assert "fail_open" not in str(caught.value)
    assert files_under(tmp_path) == []

    # A folder removed after the store was built: the first call is refused, nothing is paid for.
    (tmp_path / "gone").mkdir()
    ledger = BudgetLedger(SQLiteStore(tmp_path / "gone" / "budgets.db"), [BudgetLimit(key="run:*", usd=1.0)])
    (tmp_path / "gone").rmdir()
    with pytest.raises(LedgerUnavailable) as unavailable:
        await ledger.reserve(KEYS, usd=0.1, tokens=1)
    assert "does not exist (create it first)" in str(unavailable.value)
    assert await ledger.journaled() == ()  # looking for waiting spend creates nothing either
    await ledger.aclose()
    assert files_under(tmp_path) == []

    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="is not a folder") as not_a_folder:
        BudgetLedger.from_config(BudgetsConfig(store=f"sqlite:///{tmp_path / 'a-file' / 'budgets.db'}"))
    assert not_a_folder.value.key == "budgets.store"


def test_a_journal_named_in_a_missing_folder_is_refused_when_the_ledger_is_made(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.db")
    journal = tmp_path / "journals" / "pending.jsonl"
    # Refused now, not when the store is down and a paid-for spend needs the journal.
    with pytest.raises(ConfigError, match="does not exist") as caught:
        BudgetLedger(store, journal=journal)
    assert caught.value.key == "journal" and str(journal) in str(caught.value)
    assert files_under(tmp_path) == []


async def test_the_default_store_and_journals_work_on_a_fresh_gearshift_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fresh" / "home"  # not there yet, nor its parent
    monkeypatch.setenv("GEARSHIFT_HOME", str(home))
    config = BudgetsConfig()
    assert config.store == f"sqlite:///{home / 'budgets.db'}"
    ledger = BudgetLedger.from_config(config)
    try:
        assert await ledger.journaled() == ()
        spent = await ledger.reserve(KEYS, usd=0.2, tokens=5)
        await ledger.commit(spent, usd=0.2, tokens=5)
        assert (home / "budgets.db").is_file()
        assert ledger.journal.path == home / "budgets.db.pending-spend.jsonl"
    finally:
        await ledger.aclose()

    # A Redis store's journal lives in the data folder too: its folder is made for the first spend kept.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = RedisStore(f"redis://127.0.0.1:{port}/0")  # nothing listens there
    held = await BudgetLedger(MemoryStore()).reserve(KEYS, usd=0.1, tokens=1)
    redis_ledger = BudgetLedger(down)
    try:
        assert not (home / "pending-spend").exists()
        await redis_ledger.commit(held, usd=0.1, tokens=1)  # kept in the journal, not lost
        assert redis_ledger.journal.path.parent == home / "pending-spend"
        assert [s.reservation_id for s in await redis_ledger.journaled()] == [held.id]
    finally:
        await redis_ledger.aclose()
