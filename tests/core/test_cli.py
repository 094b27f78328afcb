"""The `gearshift` command line, run in-process through `main(argv)`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import local_config

from gearshift import cli, read_records
from gearshift.cli import Terminated, main
from gearshift.testing import LocalOpenAIServer


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEARSHIFT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./gearshift.toml


def test_route_json_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "What is the capital of France?", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert {"model", "tier", "reasons", "estimated_cost_usd", "fallbacks"} <= decision.keys()
    assert isinstance(decision["reasons"], list) and decision["reasons"]
    assert decision["estimated_cost_usd"] > 0


def test_a_hard_prompt_routes_above_an_easy_one(capsys: pytest.CaptureFixture[str]) -> None:
    main(["route", "hi", "--json"])
    easy = json.loads(capsys.readouterr().out)
    hard = (
        "Prove rigorously, step by step, that the following concurrent lock-free queue is linearizable, "
        "analyze the trade-offs against a mutex-based design, and derive its amortized complexity:\n"
        "```rust\nimpl<T> Queue<T> { fn push(&self, v: T) { loop { let tail = self.tail.load(Acquire); "
        "if self.tail.compare_exchange(tail, new, AcqRel, Acquire).is_ok() { break; } } } }\n```"
    )
    main(["route", hard, "--step", "plan", "--json"])
    assert json.loads(capsys.readouterr().out)["tier"] > easy["tier"]


def test_route_prints_reasons_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "hello"]) == 0
    out = capsys.readouterr().out
    assert "model:" in out and "why:" in out


def test_an_unknown_step_type_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "hello", "--step", "ponder"]) == 2
    err = capsys.readouterr().err
    assert "--step" in err and "ponder" in err and "plan" in err


@pytest.mark.parametrize(
    "command",
    [["route"], ["chat"], ["batch"], ["report"], ["serve"], ["budget", "show"], ["budget", "reset"]],
)
def test_the_config_option_s_help_gives_the_order_the_file_is_looked_for_in(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "default: ./gearshift.toml", yet $GEARSHIFT_CONFIG, when set, is read first.
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "(default: $GEARSHIFT_CONFIG, then ./gearshift.toml)" in " ".join(capsys.readouterr().out.split())


def test_a_missing_config_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "hello", "--config", "nope.toml"]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_chat_without_keys_says_which_variable_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "hello"]) == 2
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err and "ANTHROPIC_API_KEY" in err


def test_chat_calls_a_model_whose_deployment_needs_no_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key check read each model's own provider only: this model was refused ("no API key")
    # though its second deployment, a local server, needs none.
    monkeypatch.delenv("GEARSHIFT_TEST_UNSET_KEY", raising=False)
    with LocalOpenAIServer(models=("tiny",)) as server:
        config = tmp_path / "gearshift.toml"
        config.write_text(
            f'[providers.hosted]\nkind = "openai"\nbase_url = "{server.base_url}"\n'
            'api_key_env = "GEARSHIFT_TEST_UNSET_KEY"\n\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{server.base_url}"\nrequire_key = false\n\n'
            '[[models]]\nid = "tiny"\nprovider = "hosted"\nmodel = "tiny"\ntier = 1\n'
            'prices = { input = 0.1, output = 0.2 }\ndeployments = [{ provider = "local" }]\n'
        )
        assert main(["chat", "hello from a deployment", "--config", str(config)]) == 0
    assert "hello from a deployment" in capsys.readouterr().out


def test_chat_streams_from_a_configured_local_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with LocalOpenAIServer(models=("tiny",)) as server:
        config = tmp_path / "gearshift.toml"
        config.write_text(
            local_config(server.base_url, '[log]\npath = "decisions.jsonl"\ninclude_prompts = true\n')
        )
        assert main(["chat", "hello from the cli", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert "hello from the cli" in captured.out  # the simulated model quotes the prompt
    assert "tiny" in captured.err
    kinds = [r["kind"] for r in read_records(tmp_path / "decisions.jsonl")]
    assert kinds == ["decision", "attempt"]


def test_demo_replays_real_outcomes_and_reports(tmp_path: Path) -> None:
    log = tmp_path / "demo.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gearshift.cli",
            "demo",
            "--limit",
            "40",
            "--no-progress",
            "--log",
            str(log),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)  # with --json, stdout is the JSON and nothing else
    assert [d["dataset"] for d in report["datasets"]] == ["gsm8k", "mmlu"]
    for dataset in report["datasets"]:
        assert dataset["requests"] == 40
        assert sum(dataset["share"].values()) == pytest.approx(1.0)
        assert dataset["strongest_cost_usd"] > 0
    assert report["log"] == str(log)
    records = list(read_records(log))
    assert sum(r["kind"] == "decision" for r in records) == 80
    assert "quality kept" in result.stderr
    assert "Decision log (SQLite)" in result.stderr
    assert report["agents"]["tasks"] == 115
    assert "cost per finished task" in result.stderr


def test_demo_refuses_a_non_positive_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--limit", "0", "--no-progress"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_the_demo_total_weights_each_dataset_by_its_requests() -> None:
    from gearshift.cli._demo import DatasetReport, _combined

    small = DatasetReport("a", 100, {"w": 1.0, "s": 0.0}, 0.5, 0.9, 0.4, 1.0, 10.0)
    large = DatasetReport("b", 300, {"w": 0.5, "s": 0.5}, 0.7, 0.8, 0.6, 3.0, 20.0)
    total = _combined([small, large])
    assert total.requests == 400
    assert total.share == pytest.approx({"s": 0.375, "w": 0.625})
    assert total.quality == pytest.approx(0.65)
    assert total.cost_usd == pytest.approx(4.0)
    assert total.strongest_cost_usd == pytest.approx(30.0)


def test_the_command_starts_without_the_heavy_imports_so_an_early_ctrl_c_is_not_a_traceback() -> None:
    """`gearshift` imports `gearshift.cli`, and so `gearshift`, before `main` can take Ctrl-C or
    SIGTERM: `import gearshift` imported the router, pydantic and the SDKs, over a second in which a
    Ctrl-C was a KeyboardInterrupt traceback (24 of 30 runs interrupted in their first 1.5 s) and a
    SIGTERM ended the process unsettled. They load inside `main`, whose handlers take an interrupt."""
    heavy = ("pydantic", "openai", "anthropic", "numpy", "gearshift.routing._router", "gearshift._messages")
    probe = f"import sys, gearshift.cli; print([m for m in {heavy!r} if m in sys.modules])"
    started = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert started.stdout.strip() == "[]", started.stdout
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gearshift; print(gearshift.Router.__name__, gearshift.budgets.__name__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.split() == ["Router", "gearshift.budgets"]  # each public name on first use


@pytest.mark.parametrize(
    ("stop", "code"), [(KeyboardInterrupt, 130), (Terminated, 143)], ids=["ctrl-c", "sigterm"]
)
def test_an_interrupt_while_the_commands_load_is_its_exit_code_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, stop: type[KeyboardInterrupt], code: int
) -> None:
    """Building the parser imports every sub-command, a second or more on a busy machine: a Ctrl-C there
    escaped `main` as a traceback, and a SIGTERM killed the process before its handler was set."""

    def interrupted() -> None:
        raise stop

    monkeypatch.setattr(cli, "_parser", interrupted)
    assert main(["batch", "in.jsonl", "out.jsonl"]) == code
