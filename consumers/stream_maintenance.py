"""Housekeeping an owner does for its partitions: promote due delayed messages, trim
acknowledged entries (MINID, never MAXLEN), and remove consumers with nothing pending."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from relayq.consumers.envelope import PartitionState
from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import Scripts
from relayq.streams.stream_groups import as_text, find_group, parse_stream_id

__all__ = ("StreamMaintenance",)

_PROMOTE_BATCH = 1000


class StreamMaintenance:
    def __init__(
        self, client: Redis, scripts: Scripts, keys: Keys, consumer: str, admission_window: int
    ) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._consumer = consumer
        self._window = admission_window

    async def promote_due(self, states: Iterable[PartitionState]) -> int:
        """Move due delayed messages of the given partitions into their streams."""
        held = [s for s in states if s.active]
        if not held:
            return 0
        now_ms = time.time_ns() // 1_000_000
        async with self._client.pipeline(transaction=False) as pipe:
            for state in held:
                p = state.partition
                await self._scripts.promote_due(
                    keys=(
                        self._keys.delayed(p),
                        self._keys.delayed_data(p),
                        *self._keys.level_keys(p),
                    ),
                    args=(now_ms, _PROMOTE_BATCH, self._window, *self._level_args(p)),
                    client=pipe,
                )
            moved = await pipe.execute()
        return sum(int(m) for m in moved)

    def _level_args(self, partition: int) -> list[str]:
        """Per level: its name and its waiting-list key prefix (promote_due.lua)."""
        keys = self._keys
        return [
            arg
            for level in keys.levels.names
            for arg in (level, keys.waiting_prefix(partition, level))
        ]

    async def trim(self, state: PartitionState) -> None:
        """Delete entries below the oldest one still pending or unread, per stream."""
        for stream in self._keys.streams(state.partition):
            floor = await self._trim_floor(stream)
            if floor is not None:
                await self._client.xtrim(stream, minid=f"{floor[0]}-{floor[1]}", approximate=False)
            await self._forget_idle_consumers(stream)

    async def _trim_floor(self, stream: str) -> tuple[int, int] | None:
        groups: list[dict[str, Any]] = await self._client.xinfo_groups(stream)
        group = find_group(groups)
        if group is None:
            return None
        last = parse_stream_id(group["last-delivered-id"])
        floor = (last[0], last[1] + 1)
        if group["pending"]:
            summary: dict[str, Any] = await self._client.xpending(stream, GROUP)
            floor = min(floor, parse_stream_id(summary["min"]))
        return floor

    async def _forget_idle_consumers(self, stream: str) -> None:
        consumers: list[dict[str, Any]] = await self._client.xinfo_consumers(stream, GROUP)
        for consumer in consumers:
            name = as_text(consumer["name"])
            if name != self._consumer and not consumer["pending"]:
                await self._client.xgroup_delconsumer(stream, GROUP, name)
