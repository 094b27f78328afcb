"""What feedback's lookup of a call costs: `holds_call` on a log it was not written through.

Writes a JSONL and a SQLite decision log of `--records` decision records (about 740 bytes each, so
200,000 make a 148 MiB JSONL file, past its 64 MiB lookback), opens each afresh (as a restarted
router does: nothing in memory) and times, over `--runs` runs each, a hit on a call `--back` records
from the end and a miss (a made-up id: the JSONL search reads its whole lookback). A third figure is
the one-time build of the SQLite index when a log written before it is opened. Medians, in ms.

    uv run python tests/benchmarks/feedback_lookup.py [--records 200000] [--back 1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from gearshift import open_decision_log

_RECORD = {
    "schema": 1,
    "kind": "decision",
    "agent_id": "bench",
    "run_id": None,
    "step_type": "other",
    "model": "small",
    "tier": 1,
    "reasons": ["no code, math or reasoning markers in a short prompt"] * 6,
    "pad": "x" * 300,
}


def _median_ms(holds: Callable[[str], bool], request_id: Callable[[], str], runs: int) -> float:
    times = []
    for _ in range(runs):
        asked = request_id()
        start = time.perf_counter()
        holds(asked)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--back", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ids = [uuid.uuid4().hex for _ in range(args.records)]
    hit = ids[-1 - args.back]
    with tempfile.TemporaryDirectory() as folder:
        jsonl, db = Path(folder) / "log.jsonl", Path(folder) / "log.db"
        now = time.time()
        jsonl.write_text("".join(json.dumps({**_RECORD, "ts": now, "request_id": i}) + "\n" for i in ids))
        writer = open_decision_log(db)
        for i in ids:
            writer.write({**_RECORD, "ts": now, "request_id": i})
        writer.close()
        print(f"{args.records} records: JSONL {jsonl.stat().st_size / 2**20:.0f} MiB")
        for path in (jsonl, db):
            log = open_decision_log(path)
            holds = log.holds_call  # type: ignore[attr-defined]
            assert holds(hit) and not holds("0" * 32)
            found = _median_ms(holds, lambda: hit, args.runs)
            missed = _median_ms(holds, lambda: uuid.uuid4().hex, args.runs)
            log.close()
            print(f"{path.suffix}: hit {args.back} back {found:.2f} ms, made-up id {missed:.1f} ms")

        def build() -> None:
            old = sqlite3.connect(db)
            old.execute("DROP INDEX IF EXISTS records_request_id")
            old.commit()
            old.close()
            start = time.perf_counter()
            open_decision_log(db).close()
            builds.append(time.perf_counter() - start)

        builds: list[float] = []
        for _ in range(3):
            build()
        print(
            f".db: index built on opening a log written before it {statistics.median(builds) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
