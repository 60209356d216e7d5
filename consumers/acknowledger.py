"""Batched acknowledgements: one pipelined round trip for every ack that piled up meanwhile.

While a flush is in flight, new acks accumulate; the next flush takes them all. Under load
that is one XACK per stream per round trip; when idle it is one round trip per ack.
An ack that fails (Redis away) is kept and tried again; the entry stays pending meanwhile,
so a crash now means redelivery, never loss. The same pipeline takes back each acknowledged
attempt's stall mark (see stall_marks) and, for entries that had failed, the attempts record.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog
from redis.asyncio import Redis

from relayq.consumers.envelope import Envelope
from relayq.streams.keys import GROUP, Keys
from relayq.streams.redis_client import REDIS_UNAVAILABLE

__all__ = ("Acknowledger",)

_log = structlog.get_logger(__name__)
_RETRY_PAUSE = 0.2
_DRAIN_TIMEOUT = 5.0


class Acknowledger:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._acks: defaultdict[str, list[bytes]] = defaultdict(list)
        self._forget: defaultdict[int, list[bytes]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def ack(self, envelope: Envelope) -> None:
        self._acks[envelope.stream].append(envelope.entry_id)
        if envelope.had_failures:
            self._forget[envelope.state.partition].append(envelope.entry_id)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Flush whenever there is something to flush; runs until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send every pending ack now."""
        if not self._acks:
            self._idle.set()
            return
        acks, forget = self._acks, self._forget
        self._acks, self._forget = defaultdict(list), defaultdict(list)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for stream, ids in acks.items():
                    pipe.xack(stream, GROUP, *ids)
                    pipe.hdel(self._keys.stalls(self._keys.partition_of_key(stream)), *ids)
                for partition, ids in forget.items():
                    pipe.hdel(self._keys.attempts(partition), *ids)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            _log.warning("ack_flush_failed", error=str(exc), entries=sum(map(len, acks.values())))
            self._requeue(acks, forget)
            await asyncio.sleep(_RETRY_PAUSE)
            return
        except asyncio.CancelledError:
            # Cancelled mid-flight (drain's timeout, shutdown): the acks may not have
            # reached Redis. Keep them for the next flush; XACK of an acked id is a no-op.
            self._requeue(acks, forget)
            raise
        if not self._acks:
            self._idle.set()

    def _requeue(
        self, acks: defaultdict[str, list[bytes]], forget: defaultdict[int, list[bytes]]
    ) -> None:
        for stream, ids in acks.items():
            self._acks[stream][:0] = ids
        for partition, ids in forget.items():
            self._forget[partition][:0] = ids
        self._wake.set()

    async def drain(self, timeout: float = _DRAIN_TIMEOUT) -> None:
        """Flush until nothing is pending, including a flush ``run`` has in flight (used
        at shutdown and hand-over, before a lease is released: an ack still on its way
        would let the next owner reclaim, and send again, an entry already delivered).

        Gives up after ``timeout`` (Redis away): those entries stay pending and are
        redelivered, never lost.
        """
        try:
            async with asyncio.timeout(timeout):
                while self._acks:
                    await self.flush()
                await self._idle.wait()
        except TimeoutError:
            _log.warning("ack_drain_timed_out", entries=sum(map(len, self._acks.values())))
