"""Write `escalation.json`, the learned escalation the adapter tests route with, from hand-made runs.

A real artifact of the offline code: `train_escalation` on `hand_made_runs.looping_table` (half the
tasks, the cheap model loops on a failing tool and fails where the strong one succeeds; the other
half, both finish clean runs), calibrated to keep 95% of always-strong's success. Run it again after
a change to the escalation features:

    uv run python tests/artifacts/make_escalation.py

`tests/core/agents/test_escalation_live.py` checks that the shipped file is what this script trains.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARTIFACT = HERE / "escalation.json"


def train() -> object:
    """The `EscalationModel` this script ships."""
    sys.path.insert(0, str(HERE.parent / "core" / "agents"))
    from hand_made_runs import looping_table

    from gearshift.datasets import load_agent_runs
    from gearshift.escalation import train_escalation

    with tempfile.TemporaryDirectory() as folder:
        runs = load_agent_runs(looping_table(Path(folder) / "runs.jsonl"))
    return train_escalation(runs, success_floor=0.95)


if __name__ == "__main__":
    model = train()
    model.save(ARTIFACT)  # type: ignore[attr-defined]
    print(f"wrote {ARTIFACT}: {model!r}")
