"""Where gearshift keeps what the user did not name a file for: `$GEARSHIFT_HOME`, else the user's
data folder (platformdirs: `~/.local/share/gearshift` on Linux, `~/Library/Application Support/
gearshift` on macOS, `%LOCALAPPDATA%\\gearshift` on Windows).

The default budget ledger, the journal of spend waiting for its store, and the demo's decision log
live there, never in the working folder or beside a config file. Paths written in a config are the
user's own: relative ones start at the config file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "data_dir"]

HOME_ENV = "GEARSHIFT_HOME"
"""Environment variable that moves gearshift's own files (tests, containers, several setups)."""


def data_dir() -> Path:
    """The folder for gearshift's own files (not created here)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_path

    return user_data_path("gearshift")
