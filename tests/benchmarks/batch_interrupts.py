"""`gearshift batch` stopped at a random moment and resumed: is any answer bought twice, and does the
summary's cost cover what was charged?

Each trial runs the real CLI in a subprocess against a local OpenAI-compatible server (the real
`openai` SDK on 127.0.0.1): 12 items, `--concurrency 4`, a SQLite ledger and a JSONL decision log,
every call answered after 20-250 ms. With `--cascade` (the default here) the gates are the heuristic
one and an LLM judge (its own model), and a quarter of the cheap answers are refusals; with `--routed`
each item is routed instead, and `--gated` gives the router those gates as its own cascade. SIGTERM or
SIGINT lands after a random number of requests plus 0-0.3 s; the same command is then run again.

Counted from the decision log, which records every attempt with its item (`agent_id`): an answer paid
twice is a model that answered the same item more than once; the summary is short when the attempts'
costs add up to more than the resumed run's `cost_usd`.

    uv run python tests/benchmarks/batch_interrupts.py [--trials 20] [--seed 0] [--routed [--gated]]

Prints one line per trial, then the counts.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gearshift.testing import Delay, LocalOpenAIServer, Reply

REFUSAL = "I'm sorry, but I can't help with that."
ITEMS = 12
MODELS = (("small", 1, 0.1, 0.4), ("judge", 1, 0.5, 1.0), ("large", 2, 2.0, 8.0))  # id, tier, $/M in, out
CONFIG = "".join(
    [
        '[providers.local]\nkind = "openai"\nbase_url = "{url}"\nrequire_key = false\n',
        *(
            f'[[models]]\nid = "{name}"\nprovider = "local"\nmodel = "{name}"\ntier = {tier}\n'
            f"prices = {{{{ input = {cost_in}, output = {cost_out} }}}}\n"
            for name, tier, cost_in, cost_out in MODELS
        ),
        '[budgets]\nstore = "sqlite:///{folder}/budgets.db"\n[[budgets.limits]]\nkey = "*"\nusd = 100.0\n',
        '[log]\npath = "{folder}/decisions.jsonl"\n',
    ]
)
GATES = '\n[routing.cascade]\ngates = ["heuristic", "llm-judge"]\njudge_model = "judge"\n'


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a foreground process has it


def trial(rng: random.Random, stop: signal.Signals, *, cascade: bool, gated: bool) -> tuple[int, float]:
    """(answers paid twice, dollars charged that the summary leaves out) of one interrupted batch."""
    with (
        tempfile.TemporaryDirectory() as name,
        LocalOpenAIServer(models=[name for name, *_ in MODELS]) as server,
    ):
        folder = Path(name)
        config = CONFIG + (GATES if cascade or gated else "")
        (folder / "gearshift.toml").write_text(config.format(url=server.base_url, folder=folder))
        lines = [
            json.dumps({"id": f"q{i}", "prompt": f"question {i}", "agent_id": f"q{i}"}) for i in range(ITEMS)
        ]
        (folder / "in.jsonl").write_text("\n".join(lines) + "\n")
        calls = 3 * ITEMS

        def lag() -> float:
            return rng.uniform(0.02, 0.25)

        small = [Reply(REFUSAL if rng.random() < 0.25 else f"Answer {k}.") for k in range(calls)]
        grades = [Reply(json.dumps({"score": rng.choice([3, 9, 9]), "reason": "r"})) for _ in range(calls)]
        server.script("small", *[Delay(lag(), reply) for reply in small])
        server.script("judge", *[Delay(lag(), reply) for reply in grades])
        server.script("large", *[Delay(lag(), Reply(f"Strong {k}.")) for k in range(calls)])
        command = [
            sys.executable,
            "-m",
            "gearshift.cli",
            "batch",
            str(folder / "in.jsonl"),
            str(folder / "out.jsonl"),
            "--config",
            str(folder / "gearshift.toml"),
            "--no-progress",
            "--concurrency",
            "4",
            "--json",
            *(["--cascade"] if cascade else []),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint
        )
        target = rng.randint(1, 2 * ITEMS)
        deadline = time.monotonic() + 60
        while len(server.requests) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.3))
        process.send_signal(stop)
        process.communicate(timeout=60)
        resumed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if resumed.returncode != 0:
            raise SystemExit(f"the resumed run failed ({resumed.returncode}): {resumed.stderr[-500:]}")
        log = [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines()]
        attempts = [record for record in log if record["kind"] == "attempt"]
        answered = collections.Counter((a["agent_id"], a["model"]) for a in attempts if a["ok"])
        twice = sum(count - 1 for count in answered.values())
        charged = sum(a["cost_usd"] for a in attempts)
        return twice, charged - json.loads(resumed.stdout)["cost_usd"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--routed", action="store_true", help="no --cascade and no gates: each item routed")
    parser.add_argument("--gated", action="store_true", help="with --routed: the router's own cascade checks")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    paid_twice = short = 0
    for number in range(args.trials):
        stop = rng.choice([signal.SIGTERM, signal.SIGINT])
        twice, left_out = trial(rng, stop, cascade=not args.routed, gated=args.routed and args.gated)
        paid_twice += twice > 0
        short += left_out > 1e-9
        print(f"trial {number:2d} {stop.name}: answers paid twice {twice}, summary short by ${left_out:.9f}")
    print(
        f"{args.trials} trials: {paid_twice} with an answer paid twice, {short} with the summary short of "
        "what was charged"
    )


if __name__ == "__main__":
    main()
