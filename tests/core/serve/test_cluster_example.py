"""`examples/proxy_cluster.sh` runs offline, enforces its shared limit and stops by itself (the CI runs
only `examples/*.py`, so this test is what exercises the shell example)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "proxy_cluster.sh"


@pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("curl") is None, reason="needs redis-server and curl"
)
def test_the_cluster_example_runs_and_stops(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    result = subprocess.run(["bash", str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    answered = re.search(r"answered (\d+) requests across three proxies", result.stdout)
    assert answered and int(answered[1]) > 3
    assert "refused by proxy" in result.stdout and "limit $0.002" in result.stdout
    assert list(tmp_path.iterdir()) == []  # its work folder is gone: it cleaned up after itself
