"""Whether a Redis ledger's spend outlives a restart of its server, read once when a store connects.

A Redis with neither an append-only file (`appendonly yes`) nor RDB snapshots (`save`) keeps the
ledger in memory only: a restart forgets every recorded spend and each budget starts over, with no
error anywhere. The store reads both settings with `CONFIG GET` and logs one warning saying so. Many
managed services disable `CONFIG` (or an ACL forbids it); there the settings cannot be read, and the
store goes on without a word beyond a debug line.
"""

from __future__ import annotations

import logging
from typing import Any

from ._redis_link import RedisLink, ReplyError, pack

__all__ = ["forgets_on_restart", "warn_if_not_persistent"]

logger = logging.getLogger("gearshift.budgets")


def forgets_on_restart(appendonly: str, save: str) -> bool:
    """Whether a server with these `appendonly` and `save` settings loses its data when it restarts."""
    return appendonly.strip().lower() != "yes" and not save.strip()


async def warn_if_not_persistent(link: RedisLink, url: str, timeout: float) -> None:
    """Log one warning when the server behind `link` (at `url`, its password masked) keeps no data
    across a restart; nothing when it does or when its settings cannot be read."""
    try:
        appendonly = _setting(await link.call(pack("CONFIG", "GET", "appendonly"), timeout))
        save = _setting(await link.call(pack("CONFIG", "GET", "save"), timeout))
    except ReplyError as exc:  # CONFIG renamed away or forbidden, as on many managed services
        logger.debug("cannot read the persistence settings of the Redis ledger %s: %s", url, exc)
        return
    if appendonly is None or save is None:
        logger.debug("the Redis ledger %s did not name its persistence settings", url)
        return
    if forgets_on_restart(appendonly, save):
        logger.warning(
            'the Redis ledger %s keeps no data across a restart (appendonly %s, save "%s"): every spend '
            "it records will be lost when the server restarts, and every budget starts over; turn on its "
            "append-only file with `CONFIG SET appendonly yes` and `appendonly yes` in redis.conf (or "
            "RDB snapshots with `save`)",
            url,
            appendonly,
            save,
        )


def _setting(reply: Any) -> str | None:
    """The value of a `CONFIG GET name` reply ([name, value]), or None when it names nothing."""
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], bytes):
        return reply[1].decode("utf-8", "replace")
    return None
