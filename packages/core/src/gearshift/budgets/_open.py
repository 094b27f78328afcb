"""Opening the budget store a URL names: `memory://`, `sqlite:///path` or `redis://host:port/db`.

SQLite URLs follow SQLAlchemy's spelling: what follows `sqlite:///` is the path, so
`sqlite:///budgets.db` is relative and `sqlite:////var/lib/gearshift/budgets.db` absolute. Redis URLs
are redis-py's (`redis://`, `rediss://` for TLS, `unix://` for a socket; a password may sit in the
URL and is never shown). The SQLite and Redis stores are imported only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from .._errors import ConfigError
from .._url_secrets import ENCODE_HINT, mask_url, unencoded_userinfo
from ..config._data_dir import check_folder

if TYPE_CHECKING:
    from ._store import BudgetStore

__all__ = ["StoreURL", "check_store_folder", "open_store", "parse_store_url", "safe_url"]

_HELP = "use memory://, sqlite:///path/to/budgets.db or redis://host:port/db"
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_ENCODE_HINT = (
    "if the password holds any of / ? # @ : % or a space, percent-encode them (%2F %3F %23 %40 %3A %25 %20)"
)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL: which store, and its file path (SQLite) or full URL (Redis)."""

    kind: Literal["memory", "sqlite", "redis"]
    target: str


def safe_url(url: str) -> str:
    """`url` with any password masked (`redis://:***@host:6379/0`): for messages, logs and reprs."""
    return mask_url(url)


def parse_store_url(url: str) -> StoreURL:
    """Check a store URL's shape (no I/O); a bad one is a `ValueError` that never shows the password."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"must be a store URL; {_HELP}")
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        if url.lower() != "memory://":
            raise ValueError(f"a memory store takes nothing after memory://, got {safe_url(url)!r}")
        return StoreURL("memory", url)
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ValueError(
                f"a SQLite URL is sqlite:/// followed by a file path (sqlite:///budgets.db, "
                f"sqlite:////abs/path.db), got {url!r}"
            )
        if "?" in url:
            raise ValueError(f"a SQLite store URL takes no query, got {url!r}")
        return StoreURL("sqlite", url[len("sqlite:///") :])
    if scheme in _REDIS_SCHEMES:
        parts = urlsplit(url)
        # A raw / ? # in the password ends the host part early: what looks like no host or a bad
        # port then really is an unencoded password, and the hint says how to write it.
        hint = f"; {ENCODE_HINT}" if unencoded_userinfo(url) else ""
        if scheme != "unix" and not parts.hostname:
            raise ValueError(
                f"a Redis URL needs a host (redis://localhost:6379/0), got {safe_url(url)!r}{hint}"
            )
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError(f"the port of {safe_url(url)!r} is not a number{hint}") from None
        database = parts.path.strip("/")
        if scheme != "unix" and database and not database.isdigit():
            raise ValueError(
                f"the database of a Redis URL is a number (redis://localhost:6379/0), got "
                f"{safe_url(url)!r}{hint}"
            )
        _check_redis_options(url)
        return StoreURL("redis", url)
    raise ValueError(f"unknown budget store URL {safe_url(url)!r}; {_HELP}")


def check_store_folder(url: str, *, source: str | None = None, key: str = "budgets.store") -> None:
    """Refuse a SQLite store whose folder is missing, as the decision log is refused: a `ConfigError`
    naming `source`, `key` and the folder (only gearshift's own data folder is created, on first
    use). Other stores open no file. `url` must already be valid (`parse_store_url`)."""
    parsed = parse_store_url(url)
    if parsed.kind == "sqlite":
        check_folder(Path(parsed.target).expanduser(), what="the budget store", key=key, source=source)


def _check_redis_options(url: str) -> None:
    """What redis-py will make of the URL's query (`?socket_timeout=...`), checked now rather than
    on the first call; without redis-py installed, opening the store reports that instead."""
    try:
        from redis.connection import parse_url
    except ImportError:
        return
    try:
        parse_url(url)  # type: ignore[no-untyped-call]  # redis-py ships no types for it
    except ValueError as exc:  # its messages name the option, never the URL or password
        raise ValueError(f"{safe_url(url)!r} is not a usable Redis URL: {exc}") from None


def open_store(url: str, *, source: str | None = None, key: str = "budgets.store") -> BudgetStore:
    """The store `url` names. A bad URL, a SQLite file in a folder that does not exist (outside
    gearshift's own data folder, where it is created on first use), or a missing optional dependency,
    is a `ConfigError` naming `source` (the config file) and `key`. Opening does no network I/O."""
    try:
        parsed = parse_store_url(url)
    except ValueError as exc:
        raise ConfigError(str(exc), source=source, key=key) from None
    if parsed.kind == "memory":
        from ._memory import MemoryStore

        return MemoryStore()
    if parsed.kind == "sqlite":
        from ._sqlite import SQLiteStore

        path = Path(parsed.target).expanduser()
        check_folder(path, what="the budget store", key=key, source=source)
        return SQLiteStore(path)
    try:
        from ._redis import RedisStore

        return RedisStore(parsed.target)
    except ModuleNotFoundError as exc:
        if exc.name != "redis":
            raise
        raise ConfigError(
            "a Redis budget store needs the redis client: pip install 'gearshift[redis]'",
            source=source,
            key=key,
        ) from None
