"""Where the config file is found and how it is read, apart from what it may say.

`locate_config` picks the file (`path`, else `$GEARSHIFT_CONFIG`, else `./gearshift.toml`) and
`read_config` parses it, keeping its text so errors found later can name a line. Nothing here knows
a section of the file: `_config` (the whole schema) and `budgets._settings` (one section, read on its
own by `gearshift budget`) both start here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["CONFIG_ENV", "CONFIG_HELP", "ConfigFile", "locate_config", "read_config"]

CONFIG_ENV = "GEARSHIFT_CONFIG"
"""Environment variable naming the config file when `load_config` is given no path."""

CONFIG_HELP = f"a gearshift.toml (default: ${CONFIG_ENV}, then ./gearshift.toml)"
"""The help of a command's `--config` option: where the file is looked for when none is given."""

_CONFIG_NAME = "gearshift.toml"


@dataclass(frozen=True)
class ConfigFile:
    """A config file as read: its name, its folder (which anchors relative paths), its tables and text."""

    source: str
    base_dir: Path
    data: Mapping[str, Any]
    text: str

    def located(self, error: ConfigError) -> ConfigError:
        """`error` (raised while validating this file) with the line of each problem's key."""
        from ._config_errors import with_lines  # pydantic: not for the CLI's start (`CONFIG_HELP`)

        return with_lines(error, self.text)


def locate_config(path: str | Path | None) -> Path | None:
    """The config file to read: `path`, else `$GEARSHIFT_CONFIG`, else `./gearshift.toml` if it exists."""
    if path is not None:
        return _existing(Path(path).expanduser(), "")
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return _existing(Path(from_env).expanduser(), f" (named by ${CONFIG_ENV})")
    local = Path(_CONFIG_NAME)
    return local if local.is_file() else None


def _existing(file: Path, named_by: str) -> Path:
    if file.is_dir():
        raise ConfigError(f"is a folder, not a config file{named_by}", source=str(file))
    if not file.is_file():
        raise ConfigError(f"no such config file{named_by}", source=str(file))
    return file


def read_config(file: Path) -> ConfigFile:
    """The parsed file; a file that is not readable UTF-8 TOML raises `ConfigError` saying why."""
    try:
        text = file.read_bytes().decode("utf-8")
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends with "(at line L, column C)"
        raise ConfigError(f"not valid TOML: {exc}", source=str(file)) from None
    except UnicodeDecodeError:
        raise ConfigError("not valid TOML: the file is not UTF-8 text", source=str(file)) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(
            "not a usable config: arrays or inline tables are nested too deeply", source=str(file)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", source=str(file)) from None
    return ConfigFile(source=str(file), base_dir=file.resolve().parent, data=data, text=text)
