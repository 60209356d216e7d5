"""``consumers``: the consumers of every stream's group (XINFO CONSUMERS), and ``prune``:
delete those that hold nothing pending, belong to no live worker and have been idle long
enough.

The pending check and XGROUP DELCONSUMER are one atomic step (``prune_consumer_1.lua``):
deleting a consumer drops its pending entries, so one that took an entry meanwhile is
kept. A live worker's consumer is kept even when empty (it reads again at once); a pruned
consumer of a worker that comes back is created again by its next read.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from relayq.ops.live_workers import live_workers
from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import script_source
from relayq.streams.stream_groups import as_text

__all__ = ("ConsumerInfo", "PruneResult", "list_consumers", "prune_consumers")


class ConsumerInfo(msgspec.Struct, kw_only=True):
    partition: int
    priority: str
    consumer: str
    pending: int
    idle_ms: int
    """Since the consumer last read or claimed (XINFO CONSUMERS ``idle``)."""
    live: bool
    """Whether a live worker has this name."""


class PruneResult(msgspec.Struct, kw_only=True):
    removed: list[ConsumerInfo]
    kept: int
    """Consumers left: holding entries, a live worker's, or idle for less than asked."""


async def list_consumers(client: Redis, keys: Keys) -> list[ConsumerInfo]:
    """Every consumer of every stream, by partition and level."""
    live = await live_workers(client, keys)
    found: list[ConsumerInfo] = []
    for partition in range(keys.partitions):
        streams = keys.streams(partition)
        async with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xinfo_consumers(stream, GROUP)
            replies = await pipe.execute(raise_on_error=False)
        for stream, reply in zip(streams, replies, strict=True):
            if not isinstance(reply, Exception):
                found.extend(_consumers(keys, stream, reply, live))
    return found


def _consumers(keys: Keys, stream: str, reply: list[Any], live: set[str]) -> list[ConsumerInfo]:
    partition, priority = keys.partition_of_key(stream), keys.priority_of_stream(stream)
    return [
        ConsumerInfo(
            partition=partition,
            priority=priority,
            consumer=as_text(consumer["name"]),
            pending=int(consumer["pending"]),
            idle_ms=int(consumer["idle"]),
            live=as_text(consumer["name"]) in live,
        )
        for consumer in reply
    ]


async def prune_consumers(client: Redis, keys: Keys, *, min_idle_ms: int) -> PruneResult:
    """Delete the consumers with nothing pending, not a live worker's, idle at least
    ``min_idle_ms`` (see the module docstring)."""
    script = client.register_script(script_source("prune_consumer_1"))
    consumers = await list_consumers(client, keys)
    removed = []
    for info in consumers:
        if info.live or info.pending or info.idle_ms < min_idle_ms:
            continue
        stream = keys.stream(info.partition, info.priority)
        if int(await script(keys=(stream,), args=(GROUP, info.consumer, min_idle_ms))):
            removed.append(info)
    return PruneResult(removed=removed, kept=len(consumers) - len(removed))
