"""Partition leases in Redis: acquire (SET NX PX), renew and release (Lua, token-checked).

The fence lives in PartitionState.lease_deadline: it is the time the renewal was *sent*
plus the TTL, so a worker's own view of its lease always ends no later than Redis's.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable

from redis.asyncio import Redis

from relayq.consumers.envelope import PartitionState
from relayq.streams.keys import Keys
from relayq.streams.scripts import Scripts

__all__ = ("LeaseTable",)


class LeaseTable:
    """Acquires, renews and releases partition leases for one worker."""

    def __init__(self, client: Redis, scripts: Scripts, keys: Keys, ttl: float) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._ttl_ms = round(ttl * 1000)
        self._ttl = ttl

    async def acquire(self, partitions: Iterable[int]) -> list[PartitionState]:
        """Try to take each free partition; return the states of those taken."""
        wanted = sorted(partitions)
        if not wanted:
            return []
        tokens = [secrets.token_hex(8) for _ in wanted]
        sent = time.monotonic()
        async with self._client.pipeline(transaction=False) as pipe:
            for partition, token in zip(wanted, tokens, strict=True):
                pipe.set(self._keys.lease(partition), token, nx=True, px=self._ttl_ms)
            replies = await pipe.execute()
        return [
            PartitionState(partition, token, sent + self._ttl)
            for partition, token, ok in zip(wanted, tokens, replies, strict=True)
            if ok
        ]

    async def renew(self, states: Iterable[PartitionState]) -> list[PartitionState]:
        """Renew every lease held; return the states whose lease was lost."""
        held = list(states)
        if not held:
            return []
        sent = time.monotonic()
        async with self._client.pipeline(transaction=False) as pipe:
            for state in held:
                await self._scripts.lease_renew(
                    keys=(self._keys.lease(state.partition),),
                    args=(state.token, self._ttl_ms),
                    client=pipe,
                )
            replies = await pipe.execute()
        lost = []
        for state, renewed in zip(held, replies, strict=True):
            if renewed:
                state.lease_deadline = sent + self._ttl
            else:
                lost.append(state)
        return lost

    async def release(self, state: PartitionState) -> bool:
        """Give the lease up so another worker can take the partition at once."""
        released = await self._scripts.lease_release(
            keys=(self._keys.lease(state.partition),), args=(state.token,)
        )
        return bool(released)
