"""Who may call the proxy: proxy keys, stored hashed, each mapped to an agent or a team.

A proxy key is a secret the proxy hands to one team or one agent, in the manner of LiteLLM's virtual
keys; provider keys never leave the server. Keys come from a TOML file (`[[keys]]` tables holding a
`sha256` of the key, never the key) or from environment variables `GEARSHIFT_PROXY_KEY_<NAME>`
(the raw key, hashed at once and then dropped). A presented key is hashed and compared with every
stored hash in constant time, so neither a timing difference nor a log line gives a key away.

```toml
[[keys]]
name = "search-team"
sha256 = "9f86d08..."          # python -c "import hashlib; print(hashlib.sha256(b'KEY').hexdigest())"
team = "search"                # charged to team:search (plus the caller's agent and run)
budget_keys = ["project:x"]    # more keys every call of this key is charged to

[[keys]]
name = "writer-agent"
sha256 = "..."
agent = "writer"               # every call is agent:writer, whatever the headers say
```
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["KEY_ENV_PREFIX", "ProxyKey", "ProxyKeys", "key_hash"]

KEY_ENV_PREFIX = "GEARSHIFT_PROXY_KEY_"
"""Environment variables `GEARSHIFT_PROXY_KEY_<NAME>=<key>` each add a key for agent `<name>`."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = {"name", "sha256", "agent", "team", "budget_keys"}


def key_hash(key: str) -> str:
    """The SHA-256 hex digest a proxy key is stored as."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ProxyKey:
    """One proxy key: its name (for logs), its hash, and whose budget its calls are charged to.

    With `agent` set every call of the key is that agent's; with `team` set calls are charged to
    `team:<team>` as well as to whatever agent the caller names. `budget_keys` are charged too.
    """

    name: str
    sha256: str
    agent: str | None = None
    team: str | None = None
    budget_keys: tuple[str, ...] = ()

    @property
    def charged_keys(self) -> tuple[str, ...]:
        """The budget keys every call of this key is charged to, besides the agent's and the run's."""
        team = (f"team:{self.team}",) if self.team else ()
        return (*team, *self.budget_keys)


class ProxyKeys:
    """The configured proxy keys; `match` finds the key a request presents, in constant time."""

    def __init__(self, keys: Iterable[ProxyKey] = ()) -> None:
        self.keys = tuple(keys)
        names = [k.name for k in self.keys]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"proxy key names must be unique; repeated: {', '.join(repeated)}", key="keys")

    def __bool__(self) -> bool:
        return bool(self.keys)

    def match(self, presented: str | None) -> ProxyKey | None:
        """The key whose hash matches `presented`, or None. Every stored hash is compared, always."""
        if not presented:
            return None
        digest = key_hash(presented).encode()
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256.encode()):
                found = key
        return found

    @classmethod
    def load(cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> ProxyKeys:
        """Keys from a TOML file (when given) and from `GEARSHIFT_PROXY_KEY_<NAME>` variables."""
        keys = list(_from_file(Path(path))) if path is not None else []
        env = os.environ if environ is None else environ
        for var, value in sorted(env.items()):
            if var.startswith(KEY_ENV_PREFIX) and value:
                agent = var.removeprefix(KEY_ENV_PREFIX).lower().replace("_", "-")
                if not agent:
                    raise ConfigError(
                        f"name the agent after the prefix, as in {KEY_ENV_PREFIX}WRITER", key=var
                    )
                if len(value) < 16:
                    raise ConfigError("a proxy key must be at least 16 characters long", key=var)
                keys.append(ProxyKey(name=f"env:{agent}", sha256=key_hash(value), agent=agent))
        return cls(keys)


def _from_file(path: Path) -> Iterable[ProxyKey]:
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the proxy keys file: {exc.strerror}", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=source) from None
    unknown = sorted(set(data) - {"keys"})
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}; only [[keys]] tables", source=source)
    rows = data.get("keys", [])
    if not isinstance(rows, list):
        raise ConfigError("must be an array of tables ([[keys]])", source=source, key="keys")
    for index, row in enumerate(rows):
        yield _key(row, source, f"keys[{index}]")


def _key(row: Any, source: str, where: str) -> ProxyKey:
    if not isinstance(row, dict):
        raise ConfigError("must be a table", source=source, key=where)
    if "key" in row:
        raise ConfigError("store the key's sha256, never the key", source=source, key=f"{where}.key")
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown field(s) {unknown}; known: {sorted(_FIELDS)}", source=source, key=where)
    for field in ("name", "sha256"):
        if not isinstance(row.get(field), str) or not row[field]:
            raise ConfigError("required, a non-empty string", source=source, key=f"{where}.{field}")
    digest = row["sha256"].lower()
    if not _HEX64.match(digest):
        raise ConfigError("must be 64 hex digits (a SHA-256 digest)", source=source, key=f"{where}.sha256")
    for field in ("agent", "team"):
        if field in row and (not isinstance(row[field], str) or not row[field]):
            raise ConfigError("must be a non-empty string", source=source, key=f"{where}.{field}")
    if "agent" in row and "team" in row:
        raise ConfigError("a key belongs to an agent or to a team, not both", source=source, key=where)
    budget_keys = row.get("budget_keys", [])
    if not isinstance(budget_keys, list) or not all(isinstance(k, str) and k for k in budget_keys):
        raise ConfigError("must be a list of strings", source=source, key=f"{where}.budget_keys")
    return ProxyKey(
        name=row["name"],
        sha256=digest,
        agent=row.get("agent"),
        team=row.get("team"),
        budget_keys=tuple(budget_keys),
    )
