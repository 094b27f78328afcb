"""The public names of `gearshift_mcp`, and that importing it leaves the MCP SDK unloaded."""

from __future__ import annotations

import subprocess
import sys

import gearshift_mcp


def test_the_exact_public_names() -> None:
    assert sorted(gearshift_mcp.__all__) == [
        "AttemptView",
        "BudgetStatusResult",
        "EscalateResult",
        "EscalationView",
        "FeedbackResult",
        "KeyBudget",
        "LimitView",
        "RouteConstraints",
        "RouteResult",
        "RouterTools",
        "TOKEN_ENV",
        "ToolUse",
        "build_server",
        "claude_desktop_config",
        "main",
    ]
    for name in gearshift_mcp.__all__:
        assert getattr(gearshift_mcp, name) is not None
        assert name == "TOKEN_ENV" or getattr(gearshift_mcp, name).__doc__, f"{name} has no docstring"


def test_importing_the_package_does_not_load_the_sdk() -> None:
    # The SDK takes seconds to import: `gearshift-mcp config ...` and a refused bind must not wait for it.
    probe = "import sys, gearshift_mcp; print('mcp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"
