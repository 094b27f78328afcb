"""Files the `gearshift` sub-commands write: whole or not at all, and a place the command cannot write to
is one line naming the option and the path (exit 2), not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gearshift._errors import GearshiftError
from gearshift.cli import main
from gearshift.cli._output import replaced_output

# A folder that exists and in which nobody, root included, can create a file.
UNWRITABLE = Path("/proc")


def _log(tmp_path: Path) -> Path:
    record = {"schema": 1, "kind": "decision", "ts": 1.0, "request_id": "r", "model": "m", "tier": 1}
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return log


@pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["export-outcomes", "--out", str(UNWRITABLE / "rows.jsonl")], "--out"),
        (["report", "--html", str(UNWRITABLE / "report.html")], "--html"),
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], option: str
) -> None:
    assert main([*argv, "--log", str(_log(tmp_path)), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == f"gearshift: error: {option} {argv[2]}: cannot write it (No such file or directory)\n"
    )


def test_an_output_is_replaced_whole_or_left_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    out.write_text("the old rows\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), replaced_output(out, "--out") as temporary:
        temporary.write_text("half of the new", encoding="utf-8")
        raise KeyboardInterrupt  # Ctrl-C mid-write
    assert out.read_text(encoding="utf-8") == "the old rows\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]
    with replaced_output(out, "--out") as temporary:
        temporary.write_text("the new rows\n", encoding="utf-8")
        assert out.read_text(encoding="utf-8") == "the old rows\n"  # untouched until it is whole
    assert out.read_text(encoding="utf-8") == "the new rows\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_a_failed_write_keeps_the_old_file_and_names_the_option(tmp_path: Path) -> None:
    out = tmp_path / "router.json"
    out.write_text("the old router\n", encoding="utf-8")
    full = r"^--out .*router\.json: cannot write it \(No space left"
    with pytest.raises(GearshiftError, match=full), replaced_output(out, "--out") as temporary:
        temporary.write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")
    assert out.read_text(encoding="utf-8") == "the old router\n"
    assert [p.name for p in tmp_path.iterdir()] == ["router.json"]
