"""Create, list and remove repeatable messages (see ``streams.schedule``).

A schedule lives in the partition of its message's conversation (``{ns:P}:schedules`` and
``{ns:P}:schedules:due``), so the partition's owner fires it, atomically with the enqueue
(``fire_schedule_3.lua``); ``ns:schedules`` maps each name to its partition.

``ScheduleBook`` (asyncio) and ``SyncScheduleBook`` (blocking) share one plan: the
functions below build the schedule and queue every command on a pipeline, so the two
classes differ only in ``await``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import redis
import redis.asyncio
import structlog

from relayq.producers.send_request import SendRequest, prepare
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.schedule import (
    Schedule,
    check_cron,
    check_every,
    decode_schedule,
    encode_schedule,
)
from relayq.streams.settings import Settings
from relayq.streams.validation import check_identifier

__all__ = ("ScheduleBook", "SyncScheduleBook")

_log = structlog.get_logger(__name__)

MAX_SCHEDULE_NAME_LENGTH = 200

_Pipeline = redis.client.Pipeline | redis.asyncio.client.Pipeline


class ScheduleBook:
    def __init__(self, client: redis.asyncio.Redis, keys: Keys, settings: Settings) -> None:
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
        schedule = _build(name, every, cron, fields, self._settings)
        previous = await self._client.hget(self._keys.schedule_index, schedule.name)
        async with self._client.pipeline(transaction=True) as pipe:
            _queue_add(pipe, self._keys, schedule, previous)
            await pipe.execute()
        return schedule

    async def list(self) -> list[tuple[Schedule, int]]:
        """Every schedule with its next due time (Unix ms), by name."""
        async with self._client.pipeline(transaction=False) as pipe:
            _queue_list(pipe, self._keys)
            return _parse_list(await pipe.execute())

    async def remove(self, name: str) -> bool:
        """Stop and delete schedule ``name``; False when there was none."""
        raw = await self._client.hget(self._keys.schedule_index, name)
        if raw is None:
            return False
        async with self._client.pipeline(transaction=True) as pipe:
            _queue_delete(pipe, self._keys, name, int(raw))
            await pipe.execute()
        return True


class SyncScheduleBook:
    """``ScheduleBook`` for a blocking client."""

    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings) -> None:
        self._client = client
        self._keys = keys
        self._settings = settings

    def add(
        self,
        name: str,
        *,
        every: float | dt.timedelta | None = None,
        cron: str | None = None,
        **fields: Any,
    ) -> Schedule:
        schedule = _build(name, every, cron, fields, self._settings)
        previous = self._client.hget(self._keys.schedule_index, schedule.name)
        with self._client.pipeline(transaction=True) as pipe:
            _queue_add(pipe, self._keys, schedule, previous)
            pipe.execute()
        return schedule

    def list(self) -> list[tuple[Schedule, int]]:
        with self._client.pipeline(transaction=False) as pipe:
            _queue_list(pipe, self._keys)
            return _parse_list(pipe.execute())

    def remove(self, name: str) -> bool:
        raw = self._client.hget(self._keys.schedule_index, name)
        if raw is None:
            return False
        with self._client.pipeline(transaction=True) as pipe:
            _queue_delete(pipe, self._keys, name, int(raw))
            pipe.execute()
        return True


def _build(
    name: str, every: object, cron: object, fields: dict[str, Any], settings: Settings
) -> Schedule:
    name = check_identifier("name", name, MAX_SCHEDULE_NAME_LENGTH)
    if (every is None) == (cron is None):
        raise ValidationError("schedule", "give exactly one of every= or cron=")
    for field in ("delay", "not_before", "dedup_key"):
        if fields.get(field) is not None:
            raise ValidationError(field, "is not supported on a repeatable message")
    template = prepare(SendRequest(**fields), settings, trace=False).message
    if every is not None:
        return Schedule(name=name, template=template, every_ms=check_every(every))
    return Schedule(name=name, template=template, cron=check_cron(cron))


def _queue_add(pipe: _Pipeline, keys: Keys, schedule: Schedule, previous: Any) -> None:
    """Store ``schedule`` in its partition, removing it from ``previous`` (the partition
    the name was in, or None) if that is another one; due one interval from now."""
    template = schedule.template
    partition = keys.partition_of(template.tenant, template.conversation)
    if previous is not None and int(previous) != partition:
        _queue_delete(pipe, keys, schedule.name, int(previous))
    first = schedule.next_due_ms(time.time_ns() // 1_000_000)
    pipe.hset(keys.schedules(partition), schedule.name, encode_schedule(schedule))
    pipe.zadd(keys.schedule_due(partition), {schedule.name: first})
    pipe.hset(keys.schedule_index, schedule.name, partition)


def _queue_delete(pipe: _Pipeline, keys: Keys, name: str, partition: int) -> None:
    pipe.hdel(keys.schedules(partition), name)
    pipe.zrem(keys.schedule_due(partition), name)
    pipe.hdel(keys.schedule_index, name)


def _queue_list(pipe: _Pipeline, keys: Keys) -> None:
    for partition in range(keys.partitions):
        pipe.hgetall(keys.schedules(partition))
        pipe.zrange(keys.schedule_due(partition), 0, -1, withscores=True)


def _parse_list(replies: list[Any]) -> list[tuple[Schedule, int]]:
    """The replies to ``_queue_list``: every schedule and its due time, by name. One that
    cannot be decoded (written by hand or by a foreign writer; workers never fire it) is
    left out with a warning naming it, so one bad record does not hide the others."""
    found: list[tuple[Schedule, int]] = []
    for encoded, due in zip(replies[0::2], replies[1::2], strict=True):
        due_by_name = {name: int(score) for name, score in due}
        for name, data in encoded.items():
            try:
                found.append((decode_schedule(data), due_by_name.get(name, 0)))
            except ValidationError as exc:
                _log.warning(
                    "schedule_unreadable",
                    name=name.decode(errors="replace"),
                    error=str(exc),
                    remedy="remove it and add it again",
                )
    return sorted(found, key=lambda item: item[0].name)
