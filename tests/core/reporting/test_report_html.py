"""`gearshift report --html` writes one self-contained page that headless Chromium renders without a
console message (Debian's `chromium`; `.ci/run` installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gearshift.cli import main
from gearshift.reporting import build_report, render_html

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
)


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must check the HTML report in Chromium: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def _render(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from `page`, and every console message the page produced."""
    done = subprocess.run(
        [_chromium(), *_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout, re.findall(r":CONSOLE[^\]]*\] (.*)", done.stderr)


def test_the_console_check_sees_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>undefinedFunction()</script>", encoding="utf-8")
    _, console = _render(page, tmp_path / "profile")
    assert any("undefinedFunction" in line for line in console)


def test_the_html_report_renders_without_console_errors(
    tmp_path: Path, sample_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = sample_log
    page = tmp_path / "report.html"
    assert main(["report", "--log", str(log), "--html", str(page), "--json"]) == 0
    json.loads(capsys.readouterr().out)  # with --html, --json still prints only JSON
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)  # self-contained: nothing to fetch
    dom, console = _render(page, tmp_path / "profile")
    assert console == []
    assert dom.count("<svg") == 2 and dom.count("<table") == 7
    assert "Share per tier over time" in dom and "Cost against always-strongest" in dom
    assert "2026-W47" in dom and "2026-W48" in dom
    assert "2 shadow pairs, $0.0120 spent on shadows" in dom
    assert "2 upward (calls answered below the reference's tier): judged quality 0.500 against 1.000" in dom
    assert "downward" not in dom  # no downward pairs in this log
    lines = re.findall(r'<polyline[^>]*points="([^"]*)"', dom)
    assert len(lines) == 2 and all(len(points.split()) == 3 for points in lines)  # zero, then two days


def test_a_cost_below_a_tenth_of_a_cent_keeps_its_digits(records: list[dict[str, Any]]) -> None:
    # A cheap model's calls cost hundredths of a cent: at four decimals the tier table's cost per
    # request read "$0.0000", as if they were free.
    cheap = [{**r, "cost_usd": 0.0000137} if r["kind"] == "attempt" else r for r in records]
    page = render_html(build_report(cheap))
    assert '<td class="n">$0.000014</td>' in page and "$0.0000<" not in page
    assert '<td class="n">$0.0120</td>' in render_html(build_report(records))  # cents as before
