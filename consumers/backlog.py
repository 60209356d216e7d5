"""Is anything left to deliver in a namespace? (burst mode's exit test, and the ops CLI)"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from relayq.streams.keys import Keys
from relayq.streams.stream_groups import find_group, parse_stream_id

__all__ = ("Backlog", "measure_backlog")


class Backlog(msgspec.Struct, frozen=True):
    waiting: int
    """Messages waiting in their tenants' lists for admission into a stream (exact)."""
    unread: int
    """Entries not yet read by the group (exact on Redis >= 7, else 0 or 1 per stream)."""
    pending: int
    """Entries read but not yet acknowledged or dead-lettered."""
    delayed: int
    dead_letters: int

    @property
    def drained(self) -> bool:
        return not (self.waiting or self.unread or self.pending or self.delayed)


def _unread(group: dict[str, Any] | None, last_entry: list[Any]) -> int:
    if not last_entry:
        return 0
    if group is None:
        return 1
    lag = group.get("lag")
    if isinstance(lag, int):
        return lag
    newest = parse_stream_id(last_entry[0][0])
    return int(newest > parse_stream_id(group["last-delivered-id"]))


async def _waiting(client: Redis, keys: Keys) -> int:
    """Messages in every waiting list: the rings name the lists (two round trips, the
    second only when some tenant has messages waiting)."""
    places = [(p, level) for p in range(keys.partitions) for level in keys.levels.names]
    async with client.pipeline(transaction=False) as pipe:
        for partition, level in places:
            pipe.lrange(keys.ring(partition, level), 0, -1)
        rings = await pipe.execute()
    lists = [
        keys.waiting(partition, level, tenant.decode())
        for (partition, level), tenants in zip(places, rings, strict=True)
        for tenant in tenants
    ]
    if not lists:
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for waiting in lists:
            pipe.llen(waiting)
        return sum(await pipe.execute())


async def measure_backlog(client: Redis, keys: Keys) -> Backlog:
    """Counts over every partition, in a few pipelined round trips."""
    streams = [s for p in range(keys.partitions) for s in keys.streams(p)]
    async with client.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xinfo_groups(stream)
            pipe.xrevrange(stream, count=1)
        for p in range(keys.partitions):
            pipe.zcard(keys.delayed(p))
            pipe.xlen(keys.dead_letter(p))
        replies = await pipe.execute(raise_on_error=False)
    unread = pending = 0
    for index in range(len(streams)):
        groups, last_entry = replies[2 * index], replies[2 * index + 1]
        if isinstance(groups, Exception):  # no such stream yet
            continue
        group = find_group(groups)
        pending += int(group["pending"]) if group else 0
        unread += _unread(group, last_entry)
    tail = replies[2 * len(streams) :]
    delayed = sum(int(n) for n in tail[0::2])
    dead = sum(int(n) for n in tail[1::2])
    waiting = await _waiting(client, keys)
    return Backlog(
        waiting=waiting, unread=unread, pending=pending, delayed=delayed, dead_letters=dead
    )
