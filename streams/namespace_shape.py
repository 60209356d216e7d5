"""A namespace's fixed shape, its partitions and priority levels, agreed with Redis.

The first client to use a namespace records its shape in ``ns:meta``; every later client
checks its settings against the record and refuses to run on a different one (a message
would go to a stream no worker reads, or to another partition than its conversation's).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.asyncio import Redis

from relayq.streams.errors import ConfigurationError
from relayq.streams.keys import Keys
from relayq.streams.priority_levels import DEFAULT_PRIORITIES
from relayq.streams.scripts import script_source

__all__ = ("check_namespace", "check_namespace_sync", "compare_namespace_sync")

_CLAIM = script_source("claim_namespace_1")


def _claim_args(keys: Keys) -> tuple[str, int, str, int, str, str]:
    return (_CLAIM, 1, keys.meta, keys.partitions, str(keys.levels), DEFAULT_PRIORITIES)


def _compare(keys: Keys, recorded: Sequence[bytes | None]) -> None:
    partitions, levels = (value.decode() if value else None for value in recorded)
    if partitions is not None and int(partitions) != keys.partitions:
        raise ConfigurationError(
            f"namespace {keys.namespace!r} was created with {partitions} partitions but "
            f"these settings say {keys.partitions}; partitions are fixed per namespace "
            "(set RELAYQ_PARTITIONS to match, or use another RELAYQ_NAMESPACE)"
        )
    if levels is not None and levels != str(keys.levels):
        raise ConfigurationError(
            f"namespace {keys.namespace!r} was created with priority levels {levels!r} but "
            f"these settings say {str(keys.levels)!r}; priority levels are fixed per "
            "namespace (set RELAYQ_PRIORITIES to match, or use another RELAYQ_NAMESPACE)"
        )


async def check_namespace(client: Redis, keys: Keys) -> None:
    """Record the namespace's shape, or fail if it differs from what is recorded."""
    _compare(keys, await client.eval(*_claim_args(keys)))


def check_namespace_sync(client: redis.Redis, keys: Keys) -> None:
    """``check_namespace`` for a blocking client."""
    _compare(keys, client.eval(*_claim_args(keys)))


def compare_namespace_sync(client: redis.Redis, keys: Keys) -> None:
    """Fail if ``keys`` differ from the namespace's recorded shape; records nothing (for
    operator commands, which must not claim a namespace nobody has used)."""
    _compare(keys, client.hmget(keys.meta, ["partitions", "priorities"]))  # type: ignore[arg-type]
