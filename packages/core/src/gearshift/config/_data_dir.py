"""Where gearshift keeps what the user did not name a file for: `$GEARSHIFT_HOME`, else the user's
data folder (platformdirs: `~/.local/share/gearshift` on Linux, `~/Library/Application Support/
gearshift` on macOS, `%LOCALAPPDATA%\\gearshift` on Windows).

The default budget ledger, the journal of spend waiting for its store, and the demo's decision log
live there, never in the working folder or beside a config file. Paths written in a config are the
user's own: relative ones start at the config file's folder, and the folder a named file goes in must
exist (`prepare_folder`), so a typo in a path is an error rather than a new folder; only folders inside
this one are created.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .._errors import ConfigError

__all__ = ["HOME_ENV", "check_folder", "data_dir", "prepare_folder"]

HOME_ENV = "GEARSHIFT_HOME"
"""Environment variable that moves gearshift's own files (tests, containers, several setups)."""


def data_dir() -> Path:
    """The folder for gearshift's own files (not created here)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_path

    return user_data_path("gearshift")


def prepare_folder(path: Path, *, create: bool = True) -> None:
    """Make sure the folder of the file `path` is there: one inside gearshift's own data folder is
    created (with `create`; without it, only the check is made), as the CLI does for its own files;
    any other folder must exist, or a typo in a path would silently create folders. Raises
    `FileNotFoundError` whose `strerror` names the folder and what is wrong with it."""
    folder = path.parent
    if folder.is_dir():
        return
    home = data_dir().resolve()
    if folder.resolve() == home or home in folder.resolve().parents:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return
    what = "is not a folder" if folder.exists() else "does not exist (create it first)"
    raise FileNotFoundError(errno.ENOENT, f"the folder {str(folder)!r} {what}", str(folder))


def check_folder(path: Path, *, what: str, key: str, source: str | None = None) -> None:
    """Refuse, before anything is written, a file `path` whose folder `prepare_folder` would refuse:
    a `ConfigError` on `key` (in `source`, the config file) naming the file, which is `what` ("the
    budget store"), and the folder; nothing is created."""
    try:
        prepare_folder(path, create=False)
    except FileNotFoundError as exc:
        reason = f"cannot open {what} {str(path)!r}: {exc.strerror}"
        raise ConfigError(reason, source=source, key=key) from None
