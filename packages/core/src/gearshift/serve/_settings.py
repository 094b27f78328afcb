"""How one proxy process is set up: which config, which keys, what body size, whether it logs each
request; from the CLI or the environment (every worker process of `--workers N` reads the same
environment, and nothing else of the CLI's process: not its logging either)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ServeSettings"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_CONFIG_ENV = "GEARSHIFT_CONFIG"
_KEYS_ENV = "GEARSHIFT_SERVE_KEYS"
_BODY_ENV = "GEARSHIFT_SERVE_MAX_BODY_BYTES"
_OPEN_ENV = "GEARSHIFT_SERVE_NEEDS_KEYS"
_ACCESS_LOG_ENV = "GEARSHIFT_SERVE_ACCESS_LOG"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """One proxy's settings.

    `config` is the gearshift.toml (None: `$GEARSHIFT_CONFIG`, `./gearshift.toml` or the built-in
    registry); `keys_file` a TOML file of proxy keys (`GEARSHIFT_PROXY_KEY_<NAME>` variables add more);
    `max_body_bytes` the largest request body accepted (413 above); `require_keys` refuses to serve
    without proxy keys (set for any bind beyond loopback); `access_log` logs one JSON line per request
    to the `gearshift.serve.access` logger.
    """

    config: Path | None = None
    keys_file: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    require_keys: bool = False
    access_log: bool = False

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ConfigError(f"must be positive, got {self.max_body_bytes}", key="--max-body-bytes")

    def to_environ(self) -> dict[str, str]:
        """The environment that makes `from_environ` rebuild these settings in a worker process."""
        env = {
            _BODY_ENV: str(self.max_body_bytes),
            _OPEN_ENV: "1" if self.require_keys else "0",
            _ACCESS_LOG_ENV: "1" if self.access_log else "0",
        }
        if self.config is not None:
            env[_CONFIG_ENV] = str(self.config)
        if self.keys_file is not None:
            env[_KEYS_ENV] = str(self.keys_file)
        return env

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Settings from the environment `to_environ` wrote."""
        env = os.environ if environ is None else environ
        body = env.get(_BODY_ENV, str(DEFAULT_MAX_BODY_BYTES))
        try:
            max_body = int(body)
        except ValueError:
            raise ConfigError(f"must be an integer, got {body!r}", key=_BODY_ENV) from None
        return cls(
            config=Path(env[_CONFIG_ENV]) if env.get(_CONFIG_ENV) else None,
            keys_file=Path(env[_KEYS_ENV]) if env.get(_KEYS_ENV) else None,
            max_body_bytes=max_body,
            require_keys=env.get(_OPEN_ENV) == "1",
            access_log=env.get(_ACCESS_LOG_ENV) == "1",
        )
