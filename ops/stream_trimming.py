"""``trim``: stream retention now, by the workers' rule (consumers/stream_maintenance.py):
delete the acknowledged entries below the oldest entry still pending or unread, never
further. One ``trim_stream_1.lua`` call per stream computes that floor and trims to it
atomically, with an exact count."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import script_source

__all__ = ("StreamTrim", "TrimResult", "trim_streams")


class StreamTrim(msgspec.Struct, kw_only=True):
    partition: int
    priority: str
    trimmed: int


class TrimResult(msgspec.Struct, kw_only=True):
    streams: list[StreamTrim]
    """Streams that lost entries."""

    @property
    def total(self) -> int:
        return sum(stream.trimmed for stream in self.streams)


async def trim_streams(client: Redis, keys: Keys) -> TrimResult:
    """Trim every stream of the namespace (see the module docstring)."""
    script = client.register_script(script_source("trim_stream_1"))
    trimmed = []
    for partition in range(keys.partitions):
        for level in keys.levels.names:
            count = int(await script(keys=(keys.stream(partition, level),), args=(GROUP,)))
            if count:
                trimmed.append(StreamTrim(partition=partition, priority=level, trimmed=count))
    return TrimResult(streams=trimmed)
