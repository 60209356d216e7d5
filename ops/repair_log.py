"""The repair log: every repair (replay, delete, purge, release, clean, empty, trim, prune)
says who did what to how many, in a stream operators can read and in the log.

Entries go to ``{ns}:repairs`` (``Keys.repairs``), capped near ``MAX_ENTRIES``; each holds
``at_ms``, ``actor``, ``action``, ``scope`` (a short description of what was chosen, never a
payload or a credential) and ``count`` (how many things the repair changed: 0 when a
repeated repair found nothing left to do).
"""

from __future__ import annotations

import getpass
import os
import time

import msgspec
import redis
import structlog
from redis.asyncio import Redis as AsyncRedis

from relayq.streams.keys import Keys

__all__ = ("MAX_ENTRIES", "RepairEntry", "cli_actor", "log_repair", "log_repair_async")

MAX_ENTRIES = 10_000
_log = structlog.get_logger("relayq.repair")


class RepairEntry(msgspec.Struct, frozen=True, kw_only=True):
    actor: str
    action: str
    scope: str
    count: int
    at_ms: int = 0


def cli_actor() -> str:
    """Who runs a CLI repair: ``cli:<user>@<host>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{os.uname().nodename}"


def _fields(entry: RepairEntry) -> dict[str, str | int]:
    at_ms = entry.at_ms or time.time_ns() // 1_000_000
    _log.info(
        "repair", actor=entry.actor, action=entry.action, scope=entry.scope, count=entry.count
    )
    return {
        "at_ms": at_ms,
        "actor": entry.actor,
        "action": entry.action,
        "scope": entry.scope,
        "count": entry.count,
    }


def log_repair(client: redis.Redis, keys: Keys, entry: RepairEntry) -> None:
    """Record one repair (blocking client)."""
    client.xadd(keys.repairs, _fields(entry), maxlen=MAX_ENTRIES, approximate=True)  # type: ignore[arg-type]


async def log_repair_async(client: AsyncRedis, keys: Keys, entry: RepairEntry) -> None:
    """Record one repair (asyncio client)."""
    await client.xadd(keys.repairs, _fields(entry), maxlen=MAX_ENTRIES, approximate=True)  # type: ignore[arg-type]
