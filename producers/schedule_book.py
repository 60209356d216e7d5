"""Create, list and remove repeatable messages (see ``streams.schedule``).

A schedule lives in the partition of its message's conversation (``{ns:P}:schedules`` and
``{ns:P}:schedules:due``), so the partition's owner fires it, atomically with the enqueue
(``fire_schedule_3.lua``); ``ns:schedules`` maps each name to its partition.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from redis.asyncio import Redis

from producers.send_request import SendRequest, prepare
from streams.errors import ValidationError
from streams.keys import Keys
from streams.schedule import Schedule, check_cron, check_every, decode_schedule, encode_schedule
from streams.settings import Settings
from streams.validation import check_identifier

__all__ = ("ScheduleBook",)

MAX_SCHEDULE_NAME_LENGTH = 200


class ScheduleBook:
    def __init__(self, client: Redis, keys: Keys, settings: Settings) -> None:
        self._client = client
        self._keys = keys
        self._settings = settings

    async def add(
        self,
        name: str,
        *,
        every: float | dt.timedelta | None = None,
        cron: str | None = None,
        **fields: Any,
    ) -> Schedule:
        """Create or replace schedule ``name``; ``fields`` are those of ``send`` (no delay,
        dedup key). The first firing is one interval from now, or the next cron time."""
        schedule = self._build(name, every, cron, fields)
        template = schedule.template
        partition = self._keys.partition_of(template.tenant, template.conversation)
        await self._remove_elsewhere(name, partition)
        first = schedule.next_due_ms(time.time_ns() // 1_000_000)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.schedules(partition), name, encode_schedule(schedule))
            pipe.zadd(self._keys.schedule_due(partition), {name: first})
            pipe.hset(self._keys.schedule_index, name, partition)
            await pipe.execute()
        return schedule

    async def list(self) -> list[tuple[Schedule, int]]:
        """Every schedule with its next due time (Unix ms), by name."""
        found: list[tuple[Schedule, int]] = []
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in range(self._keys.partitions):
                pipe.hgetall(self._keys.schedules(partition))
                pipe.zrange(self._keys.schedule_due(partition), 0, -1, withscores=True)
            replies = await pipe.execute()
        for encoded, due in zip(replies[0::2], replies[1::2], strict=True):
            due_by_name = {name: int(score) for name, score in due}
            for name, data in encoded.items():
                found.append((decode_schedule(data), due_by_name.get(name, 0)))
        return sorted(found, key=lambda item: item[0].name)

    async def remove(self, name: str) -> bool:
        """Stop and delete schedule ``name``; False when there was none."""
        raw = await self._client.hget(self._keys.schedule_index, name)
        if raw is None:
            return False
        await self._delete(name, int(raw))
        return True

    def _build(self, name: str, every: object, cron: object, fields: dict[str, Any]) -> Schedule:
        name = check_identifier("name", name, MAX_SCHEDULE_NAME_LENGTH)
        if (every is None) == (cron is None):
            raise ValidationError("schedule", "give exactly one of every= or cron=")
        for field in ("delay", "not_before", "dedup_key"):
            if fields.get(field) is not None:
                raise ValidationError(field, "is not supported on a repeatable message")
        template = prepare(SendRequest(**fields), self._settings, trace=False).message
        if every is not None:
            return Schedule(name=name, template=template, every_ms=check_every(every))
        return Schedule(name=name, template=template, cron=check_cron(cron))

    async def _remove_elsewhere(self, name: str, partition: int) -> None:
        raw = await self._client.hget(self._keys.schedule_index, name)
        if raw is not None and int(raw) != partition:
            await self._delete(name, int(raw))

    async def _delete(self, name: str, partition: int) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.schedules(partition), name)
            pipe.zrem(self._keys.schedule_due(partition), name)
            pipe.hdel(self._keys.schedule_index, name)
            await pipe.execute()
