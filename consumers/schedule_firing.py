"""Fire the repeatable schedules of the partitions this worker owns.

Every ``_FIRE_INTERVAL`` the owner looks at each held partition's due schedules, builds
each one's message and runs ``fire_schedule_6.lua``, which admits it (``_admit.lua``) and moves the
schedule on only if that occurrence was not fired yet: once per occurrence, whatever the
number of workers (a stale owner's attempt finds the due time already moved).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog
from redis.asyncio import Redis

from relayq.consumers.envelope import PartitionState
from relayq.streams.codec import encode_message
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.schedule import decode_schedule
from relayq.streams.scripts import Scripts

__all__ = ("ScheduleFiring",)

_log = structlog.get_logger(__name__)
_BATCH = 100


class ScheduleFiring:
    def __init__(self, client: Redis, scripts: Scripts, keys: Keys, admission_window: int) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._window = admission_window

    async def fire_due(self, states: Iterable[PartitionState]) -> int:
        """Fire what is due in the given partitions; returns how many messages it enqueued."""
        held = [s.partition for s in states if s.active]
        if not held:
            return 0
        now_ms = time.time_ns() // 1_000_000
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in held:
                pipe.zrangebyscore(
                    self._keys.schedule_due(partition), "-inf", now_ms, 0, _BATCH, withscores=True
                )
            due_lists = await pipe.execute()
        fired = 0
        for partition, due in zip(held, due_lists, strict=True):
            for name, score in due:
                fired += await self._fire(partition, name, int(score), now_ms)
        return fired

    async def _fire(self, partition: int, name: bytes, due_ms: int, now_ms: int) -> int:
        data = await self._client.hget(self._keys.schedules(partition), name)
        if data is None:  # removed meanwhile
            await self._client.zrem(self._keys.schedule_due(partition), name)
            return 0
        try:
            schedule = decode_schedule(data if isinstance(data, bytes) else data.encode())
        except ValidationError as exc:
            _log.error("schedule_undecodable", name=name.decode(errors="replace"), error=str(exc))
            await self._client.zrem(self._keys.schedule_due(partition), name)
            return 0
        message = schedule.message(now_ms)
        keys, level, tenant = self._keys, message.priority, message.tenant
        fired = await self._scripts.fire_schedule(
            keys=(
                keys.schedule_due(partition),
                keys.schedules(partition),
                keys.stream(partition, level),
                keys.unread(partition, level),
                keys.ring(partition, level),
                keys.waiting(partition, level, tenant),
            ),
            args=(
                name,
                due_ms,
                schedule.next_after(due_ms, now_ms),
                encode_message(message),
                tenant,
                self._window,
            ),
        )
        return 1 if fired else 0
