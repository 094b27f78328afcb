"""A journal write the disk cannot take whole is an error, never a half record that passes for kept.

The disk is really short of room: the caller runs as its own process under a file-size limit
(`RLIMIT_FSIZE`, with `SIGXFSZ` ignored, as a full disk or a quota does: the kernel writes what fits
and refuses the rest). The store is really down: a Redis URL whose port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("resource")  # POSIX only

CALLER = textwrap.dedent(
    """
    import asyncio, json, resource, signal, sys, time
    from pathlib import Path

    from gearshift._errors import LedgerUnavailable
    from gearshift.budgets import BudgetLedger
    from gearshift.budgets._redis import RedisStore
    from gearshift.budgets._status import Reservation

    journal = Path(sys.argv[2])

    async def main() -> None:
        ledger = BudgetLedger(RedisStore(sys.argv[1]), journal=journal)
        keys = ("agent:a", "run:1")
        held = [Reservation(f"call-{n}", keys, 0.2, 10, time.time() + 60) for n in range(3)]
        outcomes = []
        await ledger.commit(held[0], usd=0.1, tokens=5)  # the store is down: journaled whole
        outcomes.append("kept")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        room = journal.stat().st_size + 40  # less than one record: the disk takes part of it
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, resource.RLIM_INFINITY))
        try:
            await ledger.commit(held[1], usd=0.1, tokens=5)
            outcomes.append("kept")
        except LedgerUnavailable:
            outcomes.append("refused")  # the caller hears the spend could not be kept
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        await ledger.commit(held[2], usd=0.1, tokens=5)  # room again
        outcomes.append("kept")
        journaled = [spend.reservation_id for spend in await ledger.journaled()]
        print(json.dumps({"outcomes": outcomes, "journaled": journaled}))

    asyncio.run(main())
    """
)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_record_the_disk_cut_short_is_refused_and_spoils_no_later_record(tmp_path: Path) -> None:
    journal = tmp_path / "spend.jsonl"
    url = f"redis://127.0.0.1:{_closed_port()}"
    done = subprocess.run(
        [sys.executable, "-c", CALLER, url, str(journal)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    outcomes, journaled = result["outcomes"], result["journaled"]
    # Every commit the caller was told is kept is in the journal, whole, and no other.
    assert journaled == [f"call-{n}" for n, outcome in enumerate(outcomes) if outcome == "kept"]
    assert outcomes[0] == outcomes[2] == "kept"
    lines = journal.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == journaled  # no half line left behind


def test_a_record_after_a_line_a_crash_cut_short_is_kept(tmp_path: Path) -> None:
    from gearshift.budgets._journal import JournaledSpend, SpendJournal

    journal = SpendJournal(tmp_path / "pending-spend.jsonl")
    journal.path.write_text('{"id":"r1","keys":["agent:a"],"usd":0.', encoding="utf-8")  # no newline
    kept = JournaledSpend("r2", ("agent:a",), 0.5, 10, 1_700_000_000.0)
    journal.append(kept)
    assert journal.pending() == (kept,)
