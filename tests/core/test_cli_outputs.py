"""What every `gearshift` sub-command does alike: outputs checked before any work, prompts from stdin,
empty prompts refused, `--json` alone on stdout, progress only on a terminal, `--version`."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from cli_support import local_config
from rich.console import Console

from gearshift.cli import main
from gearshift.testing import LocalOpenAIServer


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEARSHIFT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


MISSING = "missing/sub"  # under the test's own folder (the fixture changes into it)


# Each command names an input that does not exist either: the output check must come first, so the
# error names the output (before the fix, these read the input, or worked, and failed after).
@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["train", "--data", "none.jsonl", "--out", f"{MISSING}/r.json"], "--out"),
        (["eval", "--data", "none.jsonl", "--plot", f"{MISSING}/c.png"], "--plot"),
        (["eval-agents", "--data", "none.jsonl", "--plot", f"{MISSING}/c.png"], "--plot"),
        (["train-escalation", "--data", "none.jsonl", "--out", f"{MISSING}/e.json"], "--out"),
        (["demo", "--log", f"{MISSING}/x.db", "--no-progress"], "--log"),
        (["export-outcomes", "--log", "none.jsonl", "--out", f"{MISSING}/rows.jsonl"], "--out"),
        (["report", "--log", "none.jsonl", "--html", f"{MISSING}/r.html"], "--html"),
        (["batch", "none.jsonl", f"{MISSING}/out.jsonl", "--no-progress"], "OUT"),
    ],
)
def test_an_output_in_a_missing_folder_fails_first_with_one_line(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert option in lines[0] and f"{MISSING}" in lines[0] and "does not exist" in lines[0]
    assert captured.out == ""
    assert not Path("missing").exists()  # nothing was created on the way


def test_an_output_that_is_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "none.jsonl", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["route", "chat"])
@pytest.mark.parametrize("prompt", ["", "  \n"])
def test_an_empty_prompt_is_refused_before_any_call(
    command: str, prompt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with LocalOpenAIServer(models=("tiny",)) as server:
        config = tmp_path / "gearshift.toml"
        config.write_text(local_config(server.base_url))
        assert main([command, prompt, "--config", str(config)]) == 2
        assert server.requests == []  # nothing was sent, so nothing billed
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prompt is empty" in err[0]


def test_a_dash_reads_the_prompt_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    long_prompt = "Summarise this log line by line:\n" + "ERROR disk full on /var\n" * 2_000
    monkeypatch.setattr(sys, "stdin", io.StringIO(long_prompt))
    assert main(["route", "-", "--json"]) == 0
    from_stdin = json.loads(capsys.readouterr().out)
    assert main(["route", long_prompt, "--json"]) == 0
    from_argument = json.loads(capsys.readouterr().out)
    assert main(["route", "hi", "--json"]) == 0
    short = json.loads(capsys.readouterr().out)
    # The decision is the one for the 48,000 characters read from stdin, not for the one character "-":
    # the same as for the text given as the argument, and priced far above a short prompt even on the
    # cheapest model (whichever tier the default policy picks for it).
    assert from_stdin == from_argument
    assert from_stdin["estimated_cost_usd"] > 3 * short["estimated_cost_usd"]

    with LocalOpenAIServer(models=("tiny",)) as server:
        config = tmp_path / "gearshift.toml"
        config.write_text(local_config(server.base_url))
        monkeypatch.setattr(sys, "stdin", io.StringIO("hello from stdin"))
        assert main(["chat", "-", "--config", str(config)]) == 0
        assert server.requests[0].body["messages"][-1]["content"] == "hello from stdin"


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_stdin_that_is_not_utf_8_is_one_line_saying_so(
    errors: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Latin-1 text piped in: a traceback (UnicodeDecodeError) where the locale decodes stdin strictly,
    # and under C.UTF-8 (surrogateescape) "messages[0].content: holds a lone UTF-16 surrogate".
    latin_1 = io.TextIOWrapper(io.BytesIO("Résumé of the café's menu".encode("latin-1")), "utf-8", errors)
    monkeypatch.setattr(sys, "stdin", latin_1)
    assert main(["route", "-", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "gearshift: error: stdin: not UTF-8 text (byte 0xe9 at offset 1); convert it first, "
        "for example with iconv -f latin1 -t utf-8"
    ]
    utf_8 = io.TextIOWrapper(io.BytesIO("Résumé of the café's menu".encode()), "utf-8", errors)
    monkeypatch.setattr(sys, "stdin", utf_8)
    assert main(["route", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]


def test_a_prompt_argument_that_is_not_utf_8_is_one_line_saying_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Python hands argv's undecodable bytes on as lone surrogates ("caf\\xe9" arrives as "caf\\udce9"):
    # the error spoke of "messages[0].content" and UTF-16 surrogates.
    assert main(["route", "caf\udce9 au lait", "--json"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "gearshift: error: the prompt argument: not UTF-8 text (byte 0xe9 at offset 3); convert it "
        "first, for example with iconv -f latin1 -t utf-8"
    ]


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"gearshift {version('gearshift')}"


def test_recover_is_taken_as_the_reflect_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "The tool failed again; what now?", "--step", "recover", "--json"]) == 0
    recover = json.loads(capsys.readouterr().out)
    assert main(["route", "The tool failed again; what now?", "--step", "reflect", "--json"]) == 0
    reflect = json.loads(capsys.readouterr().out)
    assert main(["route", "The tool failed again; what now?", "--step", "act", "--json"]) == 0
    act = json.loads(capsys.readouterr().out)
    assert recover["reasons"] == reflect["reasons"] != act["reasons"]


def test_route_leaves_no_sqlite_side_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gearshift.toml"
    config.write_text('[log]\npath = "decisions.db"\n')
    assert main(["route", "hello", "--config", str(config)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.db", "gearshift.toml"]


def test_the_demo_names_a_jsonl_log_as_jsonl() -> None:
    from gearshift.cli._demo import DatasetReport, _print_table

    console = Console(record=True, width=160)
    report = DatasetReport("gsm8k", 10, {"a": 0.5, "b": 0.5}, 0.5, 0.9, 0.4, 1.0, 10.0)
    _print_table(console, [report], Path("x.jsonl"), 1.0)
    assert "Decision log (JSONL): x.jsonl" in console.export_text()
    _print_table(console, [report], Path("x.db"), 1.0)
    assert "Decision log (SQLite): x.db" in console.export_text()


@pytest.mark.parametrize(
    ("argv", "stage", "count"),
    [
        (["eval", "--dataset", "mt-bench", "--policy", "scorer"], "evaluating policies", "2/2"),
        (
            ["eval-agents", "--dataset", "tau-retail", "--policy", "scorer-steps", "--folds", "2", "--json"],
            "replaying agent runs",
            "3/3",
        ),
    ],
)
def test_progress_shows_on_a_terminal_only(
    argv: list[str],
    stage: str,
    count: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Through the real `main`, in-process: rich asks whether stderr is a terminal each time a command
    # makes its console, so FORCE_COLOR set between runs is a terminal for the next one.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert main(argv) == 0
    assert stage not in capsys.readouterr().err
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then takes stderr for a terminal
    assert main(argv) == 0
    shown = capsys.readouterr().err
    assert stage in shown and count in shown
    assert main([*argv, "--no-progress"]) == 0
    assert stage not in capsys.readouterr().err


TRAIN = ["train", "--data", "none.jsonl", "--out", "r.json"]
TRAIN_ESCALATION = ["train-escalation", "--data", "none.jsonl", "--out", "e.json"]


# A number out of range is argparse's usage error naming the option, before any work: before the
# fix, a negative seed was a NumPy traceback from inside the fit, `--min-rows -1` was taken as given,
# and `serve --port 0` announced an address it could never serve on.
@pytest.mark.parametrize(
    ("argv", "option", "got"),
    [
        (["train", "--data", "none.jsonl", "--out", "r.json", "--seed", "-1"], "--seed", "-1"),
        (["train", "--from-log", "none.jsonl", "--out", "r.json", "--min-rows", "0"], "--min-rows", "0"),
        (
            ["export-outcomes", "--log", "none.jsonl", "--out", "o.jsonl", "--min-rows", "-5"],
            "--min-rows",
            "-5",
        ),
        (["eval", "--dataset", "mt-bench", "--seed", "-2"], "--seed", "-2"),
        (["eval-agents", "--dataset", "tau-retail", "--seed", "1.5"], "--seed", "'1.5'"),
        (["serve", "--port", "0"], "--port", "0"),
        (["serve", "--port", "65536"], "--port", "65536"),
        (["serve", "--shutdown-grace", "-1"], "--shutdown-grace", "-1"),
        (["serve", "--shutdown-grace", "inf"], "--shutdown-grace", "inf"),
        # A share, floor or cost out of range was found only after the table was read and the router
        # trained (minutes on a large table), and named as a key ('target_strong_share').
        ([*TRAIN, "--target-strong-share", "1.5"], "--target-strong-share", "1.5"),
        ([*TRAIN, "--quality-floor", "nan"], "--quality-floor", "nan"),
        ([*TRAIN, "--max-cost", "-0.01"], "--max-cost", "-0.01"),
        ([*TRAIN_ESCALATION, "--success-floor", "x"], "--success-floor", "'x'"),
        ([*TRAIN_ESCALATION, "--target-handover-share", "2"], "--target-handover-share", "2"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error_naming_the_option(
    argv: list[str], option: str, got: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    assert re.search(f"argument {option}: expected a (whole )?number", last) and last.endswith(f"got {got}")
    assert "Traceback" not in captured.err and captured.out == ""
    assert not any(Path.cwd().iterdir())  # nothing was written


def test_numbers_in_range_are_read_as_given() -> None:
    from gearshift.cli._numbers import whole_number

    assert whole_number(0)("0") == 0
    assert whole_number(1, 65535)("65535") == 65535
    assert whole_number(1)(" 7 ") == 7


def test_shares_and_costs_in_range_are_read_as_given() -> None:
    from gearshift.cli._numbers import number_in

    assert number_in(0.0, 1.0)("0") == 0.0
    assert number_in(0.0, 1.0)("1") == 1.0
    assert number_in(0.0)("1e3") == 1000.0


# Before the fix, `export-outcomes --log L --out L` and `report --log L --html L` replaced the decision
# log with what they wrote, and `train --data T --out T` the outcome table with the router.
@pytest.mark.parametrize(
    ("argv", "option", "source"),
    [
        (["export-outcomes", "--log", "same.jsonl", "--out", "same.jsonl"], "--out", "--log"),
        (["report", "--log", "same.jsonl", "--html", "./same.jsonl"], "--html", "--log"),
        (["train", "--data", "same.jsonl", "--out", "same.jsonl"], "--out", "--data"),
        (["train", "--from-log", "same.jsonl", "--out", "same.jsonl"], "--out", "--from-log"),
        (["eval", "--data", "same.jsonl", "--plot", "same.jsonl"], "--plot", "--data"),
        (["eval-agents", "--data", "other.jsonl", "--train", "same.jsonl", "--plot", "same.jsonl"],
         "--plot", "--train"),
        (["train-escalation", "--data", "same.jsonl", "--out", "same.jsonl"], "--out", "--data"),
        (["batch", "same.jsonl", "same.jsonl"], "OUT", "IN"),
    ],
)  # fmt: skip
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    argv: list[str], option: str, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = b'{"schema": 1, "kind": "decision", "ts": 1.0, "request_id": "r", "model": "m", "tier": 1}\n'
    for name in ("same.jsonl", "other.jsonl"):
        Path(name).write_bytes(kept)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{option} " in captured.err and f"is also the file {source} reads" in captured.err
    assert Path("same.jsonl").read_bytes() == kept
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["other.jsonl", "same.jsonl"]
