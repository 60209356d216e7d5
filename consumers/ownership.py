"""Partition ownership: heartbeat, rendezvous assignment, and lease acquire/renew/release.

Each tick (a fraction of the lease TTL) the worker refreshes its heartbeat in ``ns:workers``
(scored with Redis server time, so host clocks need not agree), renews the leases it
holds, gives up partitions that now belong to another live worker (after draining them)
and takes the free partitions that belong to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis

from relayq.consumers.envelope import PartitionState
from relayq.consumers.membership import desired_partitions
from relayq.consumers.partition_lease import LeaseTable
from relayq.streams.keys import Keys

__all__ = ("Ownership",)

_log = structlog.get_logger(__name__)

StartPartition = Callable[[PartitionState], None]
StopPartition = Callable[[PartitionState], Awaitable[None]]


class Ownership:
    def __init__(
        self,
        *,
        client: Redis,
        keys: Keys,
        leases: LeaseTable,
        worker_id: str,
        lease_ttl: float,
        start: StartPartition,
        drop: Callable[[PartitionState], None],
        drain: StopPartition,
    ) -> None:
        self._client = client
        self._keys = keys
        self._leases = leases
        self._worker_id = worker_id
        self._ttl_ms = round(lease_ttl * 1000)
        self._start = start
        self._drop = drop
        self._drain = drain
        self.held: dict[int, PartitionState] = {}
        self._releasing: dict[int, asyncio.Task[None]] = {}
        self.live_workers: list[str] = []

    async def tick(self) -> None:
        self.live_workers = await self._heartbeat()
        await self._renew()
        desired = desired_partitions(self._worker_id, self.live_workers, self._keys.partitions)
        for partition in set(self.held) - desired:
            if partition not in self._releasing:
                state = self.held[partition]
                self._releasing[partition] = asyncio.create_task(self._release(state))
        free = desired - set(self.held) - set(self._releasing)
        for state in await self._leases.acquire(free):
            self.held[state.partition] = state
            _log.info("partition_acquired", partition=state.partition)
            self._start(state)

    async def _heartbeat(self) -> list[str]:
        seconds, micros = await self._client.time()
        now_ms = seconds * 1000 + micros // 1000
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.workers, {self._worker_id: now_ms + self._ttl_ms})
            pipe.zremrangebyscore(self._keys.workers, "-inf", now_ms)
            pipe.zrange(self._keys.workers, 0, -1)
            replies = await pipe.execute()
        return sorted(member.decode() for member in replies[2])

    async def _renew(self) -> None:
        lost = await self._leases.renew(self.held.values())
        now = time.monotonic()
        lost.extend(s for s in self.held.values() if s not in lost and now >= s.lease_deadline)
        for state in lost:
            if not state.active:
                continue  # being released (drained) right now: _release finishes it
            _log.warning("partition_lost", partition=state.partition)
            self._drop(state)
            self.held.pop(state.partition, None)

    def abandon(self, state: PartitionState) -> None:
        """Give ``state``'s partition up now (its reader failed): drain, then release."""
        if self.held.get(state.partition) is state and state.partition not in self._releasing:
            self._releasing[state.partition] = asyncio.create_task(self._release(state))

    async def _release(self, state: PartitionState) -> None:
        try:
            await self._drain(state)
            await self._leases.release(state)
            _log.info("partition_released", partition=state.partition)
        finally:
            if self.held.get(state.partition) is state:
                del self.held[state.partition]
            self._releasing.pop(state.partition, None)

    async def release_all(self) -> None:
        """Drain and release every partition (shutdown)."""
        for task in list(self._releasing.values()):
            await task
        states = list(self.held.values())
        for state in states:
            self._drop(state)
        await asyncio.gather(*(self._release(state) for state in states))

    async def leave(self) -> None:
        """Stop being a live worker, so the others take our partitions on their next tick."""
        await self._client.zrem(self._keys.workers, self._worker_id)
