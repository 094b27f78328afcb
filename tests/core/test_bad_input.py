"""Bad input gets a `ConfigError` (or a ledger error) that names the file or key and gives safe advice;
none reaches the user as a bare Python exception."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearshift import ConfigError, LedgerUnavailable, Router, load_config
from gearshift.budgets import BudgetLedger, BudgetLimit, open_store
from gearshift.routing._decision_log import open_decision_log


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gearshift.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".db"])
def test_a_log_path_that_is_a_folder_is_a_config_error(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"decisions{suffix}").mkdir()
    path = _write(tmp_path, f'[log]\npath = "decisions{suffix}"\n')
    with pytest.raises(ConfigError) as caught:
        Router.from_config(load_config(path))
    assert caught.value.source == str(path)
    assert caught.value.key == "log.path"
    assert "it is a folder" in str(caught.value)


def test_a_log_path_below_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a folder")
    with pytest.raises(ConfigError) as caught:
        open_decision_log(tmp_path / "logs" / "decisions.jsonl", source="gearshift.toml")
    assert (caught.value.source, caught.value.key) == ("gearshift.toml", "log.path")


@pytest.mark.parametrize(
    "nested",
    [
        "x = " + "[" * 5000 + "]" * 5000,
        "[routing]\nscorer = " + "{a = " * 3000 + "1" + "}" * 3000,
    ],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_a_config_error(tmp_path: Path, nested: str) -> None:
    path = _write(tmp_path, nested + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert "nested too deeply" in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_with_fail_open_on_the_warning_does_not_advise_turning_it_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_store(f"redis://127.0.0.1:{_closed_port()}/0")
    ledger = BudgetLedger(store, [BudgetLimit(key="*", usd=1.0)], fail_open=True)
    caplog.set_level(logging.WARNING)
    try:
        reservation = await ledger.reserve(("agent:a",), usd=0.01, tokens=10)
        await ledger.commit(reservation, usd=0.01, tokens=10)
        with pytest.raises(LedgerUnavailable) as caught:  # status has nothing true to report
            await ledger.status(("agent:a",))
    finally:
        await store.aclose()
    assert "went unrecorded (fail_open is on" in caplog.text
    assert "cannot be reached" in caplog.text
    assert "fail_open = true" not in caplog.text
    assert "fail_open is on" in str(caught.value) and "fail_open = true" not in str(caught.value)


# What a user whose ledger file is read-only runs; as root (which may write any file) it runs as nobody.
_RESERVE = """
import asyncio, sys
from gearshift.budgets import BudgetLedger, open_store

async def main() -> None:
    store = open_store(sys.argv[1])
    try:
        await BudgetLedger(store).reserve(("agent:a",), usd=0.01, tokens=1)
    finally:
        await store.aclose()

asyncio.run(main())
"""


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user may enter (pytest's own tmp folders are private to this user)."""
    folder = Path(tempfile.mkdtemp(prefix="gearshift-readonly-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_read_only_ledger_error_advises_permissions_never_a_new_ledger(shared_folder: Path) -> None:
    ledger_file = shared_folder / "ledger" / "budgets.db"
    ledger_file.parent.mkdir()
    store = open_store(f"sqlite:///{ledger_file}")
    ledger = BudgetLedger(store)
    reservation = await ledger.reserve(("agent:a",), usd=0.25, tokens=10)
    await ledger.commit(reservation, usd=0.25, tokens=10)
    await store.aclose()
    for path in (ledger_file.parent, *ledger_file.parent.iterdir()):
        path.chmod(0o555 if path.is_dir() else 0o444)
    command = [sys.executable, "-c", _RESERVE, f"sqlite:///{ledger_file}"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: no user here is refused a write")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        # An interpreter under a private home (pyenv's under /root) may load its libpython from there.
        probe = await asyncio.to_thread(
            subprocess.run, [*command[:4], sys.executable, "-c", "pass"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            pytest.skip(f"user 65534 cannot run {sys.executable}: {probe.stderr.strip()}")
    run = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode != 0
    assert "LedgerUnavailable" in run.stderr
    assert "readonly" in run.stderr or "read-only" in run.stderr or "unable to open" in run.stderr
    assert "may read and write the file and its folder" in run.stderr
    assert "new, empty ledger" not in run.stderr and "move it aside" not in run.stderr
    ledger_file.parent.chmod(0o755)
    store = open_store(f"sqlite:///{ledger_file}")
    try:
        status = await BudgetLedger(store, [BudgetLimit(key="*", usd=1.0)]).status(("agent:a",))
    finally:
        await store.aclose()
    assert status.remaining_usd == pytest.approx(0.75)  # the spend recorded before is all there


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        ("redis://:Sekr1t-pw@127.0.0.1:6379/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
        ("redis://:Sekr1t-pw@127.0.0.1:6379/zero", "the database of a Redis URL is a number"),
        ("redis://:Sekr1t/pw@127.0.0.1:6379/0", "percent-encode"),
    ],
)
def test_a_store_url_redis_cannot_use_is_a_config_error_at_load(
    tmp_path: Path, store: str, problem: str
) -> None:
    path = _write(tmp_path, f'[budgets]\nstore = "{store}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.source, caught.value.key) == (str(path), "budgets.store")
    assert problem in str(caught.value)
    assert "Sekr1t" not in str(caught.value)
