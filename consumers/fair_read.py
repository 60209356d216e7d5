"""One read of a partition: admit waiting messages tenant by tenant, then read new entries.

Producers put a message straight into its level's stream only while the stream holds
fewer than ``read_count`` unread entries and its tenant has nothing waiting; otherwise it
waits in the tenant's own list (``_admit.lua``). Each read runs ``admit_and_read.lua``:
the unread window of every level is topped up from the waiting lists, the level's ring
of tenants taking turns, and one XREADGROUP reads the new entries, all in one round trip.
A tenant with a million waiting messages therefore holds at most a window's worth of the
stream, and a tenant that sends ten messages behind it waits one turn, not a million.

Paused tenants and levels are not admitted at all: their messages stay in their lists,
unread, until resumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from relayq.consumers.pause_state import PauseState
from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import Scripts

__all__ = ("FairRead", "StreamBatch")

StreamBatch = tuple[str, list[tuple[bytes, dict[bytes, bytes]]]]
"""A stream's name and the entries read from it (id, fields), in stream order."""


class FairRead:
    def __init__(
        self,
        *,
        client: Redis,
        scripts: Scripts,
        keys: Keys,
        consumer: str,
        count: int,
        pauses: PauseState,
    ) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._consumer = consumer
        self._count = count
        self._pauses = pauses

    async def read(
        self, partition: int, taken: Mapping[str, int]
    ) -> tuple[list[StreamBatch], bool]:
        """Admit and read; ``taken``: entries read from each stream outside this call since
        the last one (a blocking read). Returns the batches read and whether messages are
        still waiting for room (read again before blocking)."""
        reply = await self._scripts.admit_and_read(
            keys=self._keys.level_keys(partition), args=self._args(partition, taken)
        )
        return _batches(reply[0]), bool(int(reply[1]))

    def _args(self, partition: int, taken: Mapping[str, int]) -> list[Any]:
        keys, pauses = self._keys, self._pauses
        args: list[Any] = [GROUP, self._consumer, self._count]
        for level in keys.levels.names:
            args.append(taken.get(keys.stream(partition, level), 0))
            args.append(1 if pauses.level_paused(level) else 0)
            args.append(keys.waiting_prefix(partition, level))
        if pauses.scopes:
            args.extend(pauses.paused_tenants())
        return args


def _batches(raw: list[Any]) -> list[StreamBatch]:
    """The script's XREADGROUP reply (flat field lists) as redis-py gives XREADGROUP's."""
    return [(stream.decode(), [_entry(*entry) for entry in entries]) for stream, entries in raw]


def _entry(entry_id: bytes, fields: list[bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    return entry_id, dict(zip(fields[0::2], fields[1::2], strict=True))
