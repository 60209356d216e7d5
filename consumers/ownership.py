"""Partition ownership: heartbeat, rendezvous assignment, and lease acquire/renew/release.

Each tick (a fraction of the lease TTL) the worker calls, in this order:

1. ``renew()``: refresh the heartbeat in ``ns:workers`` (scored with Redis server time, so
   host clocks need not agree) and renew the leases held; returns the partitions lost
   (their lease was taken or ran out), which the worker stops at once;
2. ``to_release()``: the held partitions that now belong to another live worker, which the
   worker drains, then hands back with ``release()`` (and ``forget()`` in any case);
3. ``acquire()``: takes the free partitions that belong to this worker; returns them, and
   the worker starts reading them.

Ownership only keeps the books (what is held, what is being released) and talks to Redis;
it never calls into the worker. Each step's outcome is acted on before the next step's
round trip, so a Redis error in one step loses nothing another step reported.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis

from relayq.consumers.envelope import PartitionState
from relayq.consumers.membership import desired_partitions
from relayq.consumers.partition_lease import LeaseTable
from relayq.streams.keys import Keys

__all__ = ("Ownership",)

_log = structlog.get_logger(__name__)


class Ownership:
    def __init__(
        self, *, client: Redis, keys: Keys, leases: LeaseTable, worker_id: str, lease_ttl: float
    ) -> None:
        self._client = client
        self._keys = keys
        self._leases = leases
        self._worker_id = worker_id
        self._ttl_ms = round(lease_ttl * 1000)
        self.held: dict[int, PartitionState] = {}
        """Partitions this worker owns, including those being drained for release."""
        self._releasing: set[int] = set()
        self._waiting: set[int] = set()
        """Partitions this worker should own whose lease another holds (last reported)."""
        self.live_workers: list[str] = []

    async def renew(self) -> list[PartitionState]:
        """Heartbeat and renew every lease; return the partitions lost (no longer held).

        A partition being released is not reported: its drain has stopped it already and
        its release finishes it.
        """
        self.live_workers = await self._heartbeat()
        lost = await self._leases.renew(self.held.values())
        now = time.monotonic()
        lost.extend(s for s in self.held.values() if s not in lost and now >= s.lease_deadline)
        reported = []
        for state in lost:
            # Skip what a release finished (forget) during the round trips above, and a
            # partition being released: its drain has stopped it and its release ends it.
            if self.held.get(state.partition) is not state or state.partition in self._releasing:
                continue
            _log.warning("partition_lost", partition=state.partition)
            del self.held[state.partition]
            reported.append(state)
        return reported

    def to_release(self) -> list[PartitionState]:
        """Held partitions that now belong to another live worker (as of the last
        ``renew``), each marked as being released: drain it, then ``release`` it."""
        desired = self._desired()
        surplus = [
            state
            for partition, state in self.held.items()
            if partition not in desired and partition not in self._releasing
        ]
        self._releasing.update(state.partition for state in surplus)
        return surplus

    async def acquire(self) -> list[PartitionState]:
        """Take the free partitions that belong to this worker; return those taken."""
        free = self._desired() - set(self.held) - self._releasing
        acquired = await self._leases.acquire(free)
        for state in acquired:
            self.held[state.partition] = state
            _log.info("partition_acquired", partition=state.partition)
        waiting = free - {state.partition for state in acquired}
        if waiting != self._waiting:
            self._waiting = waiting
            if waiting:
                await self._report_waiting(sorted(waiting))
        return acquired

    async def _report_waiting(self, partitions: list[int]) -> None:
        """Say which partitions wait for another worker's lease (a dead worker's runs out
        on its own) and for how long at most: a restarted worker is otherwise silent."""
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.pttl(self._keys.lease(partition))
            remaining_ms = await pipe.execute()
        _log.info(
            "waiting_for_leases",
            partitions=partitions,
            seconds_at_most=round(max(0, *remaining_ms) / 1000, 1),
            hint="held by another worker (a stopped one's lease expires on its own)",
        )

    def abandon(self, state: PartitionState) -> bool:
        """Mark ``state``'s partition as being released (its reader failed). True when the
        caller must drain and release it; False when it is no longer held by this tenure or
        is being released already."""
        if self.held.get(state.partition) is not state or state.partition in self._releasing:
            return False
        self._releasing.add(state.partition)
        return True

    async def release(self, state: PartitionState) -> None:
        """Hand a drained partition's lease back, so another worker can take it at once."""
        await self._leases.release(state)
        _log.info("partition_released", partition=state.partition)

    def forget(self, state: PartitionState) -> None:
        """Stop holding ``state``'s partition (after ``release``, or after it failed)."""
        if self.held.get(state.partition) is state:
            del self.held[state.partition]
        self._releasing.discard(state.partition)

    async def leave(self) -> None:
        """Stop being a live worker, so the others take our partitions on their next tick."""
        await self._client.zrem(self._keys.workers, self._worker_id)

    def _desired(self) -> set[int]:
        return desired_partitions(self._worker_id, self.live_workers, self._keys.partitions)

    async def _heartbeat(self) -> list[str]:
        seconds, micros = await self._client.time()
        now_ms = seconds * 1000 + micros // 1000
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.workers, {self._worker_id: now_ms + self._ttl_ms})
            pipe.zremrangebyscore(self._keys.workers, "-inf", now_ms)
            pipe.zrange(self._keys.workers, 0, -1)
            replies = await pipe.execute()
        return sorted(member.decode() for member in replies[2])
