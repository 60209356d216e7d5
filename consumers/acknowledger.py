"""Batched acknowledgements: one pipelined round trip for every ack that piled up meanwhile.

While a flush is in flight, new acks accumulate; the next flush takes them all: one
``acknowledge_8.lua`` call per partition per round trip under load, one round trip per ack
when idle. The script acknowledges each entry, takes back its stall mark (see
stall_marks) and attempts record, counts it as delivered (``{ns:P}:counts``) and keeps its
outcome record (``streams.outcome``) — counted once, only if this call acknowledged it.
An ack that fails (Redis away) is kept and tried again; the entry stays pending meanwhile,
so a crash now means redelivery, never loss.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import msgspec
import structlog
from redis.asyncio import Redis

from relayq.consumers.envelope import Envelope
from relayq.streams.keys import GROUP, Keys
from relayq.streams.outcome import OutcomeState, counter_field, delivered_record
from relayq.streams.redis_client import REDIS_UNAVAILABLE
from relayq.streams.script_pipeline import ScriptCall, run_script_calls
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

__all__ = ("Acknowledger",)

_log = structlog.get_logger(__name__)
_RETRY_PAUSE = 0.2
_DRAIN_TIMEOUT = 5.0
_FIELD_CACHE = 100_000
_Entry = tuple[str, str, str, str, str, str, str]
"""What ``acknowledge_8.lua`` takes per entry: stream, entry id, counter field, message id,
record, batch id, "1" if an attempt failed (an attempts record exists); all strings
(Redis's cmsgpack reads no msgpack bin)."""
_TRIM_EVERY = 0.1
"""Seconds between two trimmings of a partition's delivered records (the count and age
limits): a trimming costs Redis several commands, so not every flush makes one; the
records kept exceed the count by at most what 0.1 s delivers."""
_packer = msgspec.msgpack.Encoder()


class Acknowledger:
    def __init__(
        self, client: Redis, scripts: Scripts, keys: Keys, settings: Settings, worker: str
    ) -> None:
        self._client = client
        self._script = scripts.acknowledge
        self._keys = keys
        self._worker = worker
        self._keep_ms = round(settings.keep_delivered * 1000)
        self._keep_count = settings.keep_delivered_count
        self._events = settings.events_keep
        self._with_record = bool(self._keep_ms or self._events)
        self._searchable = "1" if settings.search_index else ""
        self._acks: defaultdict[int, list[_Entry]] = defaultdict(list)
        self._fields: dict[tuple[str, str], str] = {}
        self._count = 0
        self._trimmed: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def ack(self, envelope: Envelope, provider_message_id: str | None = None) -> None:
        message = envelope.message
        partition = envelope.state.partition
        record = ""
        if self._with_record:
            record = delivered_record(
                message,
                partition,
                envelope.entry_id,
                self._worker,
                envelope.failed_attempts + 1,
                provider_message_id,
                time.time_ns() // 1_000_000,
            ).decode()
        self._acks[partition].append(
            (
                envelope.stream,
                envelope.entry_id.decode(),
                self._counter_field(message.priority, message.tenant),
                message.id,
                record,
                message.batch or "",
                "1" if envelope.failed_attempts else "",
            )
        )
        self._count += 1
        self._idle.clear()
        self._wake.set()

    def _counter_field(self, priority: str, tenant: str) -> str:
        """The counter field of (level, tenant), made once per pair (bounded cache)."""
        key = (priority, tenant)
        field = self._fields.get(key)
        if field is None:
            if len(self._fields) >= _FIELD_CACHE:
                self._fields.clear()
            field = self._fields[key] = counter_field(OutcomeState.DELIVERED, priority, tenant)
        return field

    async def run(self) -> None:
        """Flush whenever there is something to flush; runs until cancelled. (Not gathered
        for a while first: an ack held back widens the window in which a crash makes the
        next owner send a delivered message again — tests/test_stalls.py saw it.)"""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send every pending ack now."""
        if not self._acks:
            self._idle.set()
            return
        acks, count = self._acks, self._count
        self._acks, self._count = defaultdict(list), 0
        try:
            await self._send(acks)
        except REDIS_UNAVAILABLE as exc:
            _log.warning("ack_flush_failed", error=str(exc), entries=count)
            self._requeue(acks, count)
            await asyncio.sleep(_RETRY_PAUSE)
            return
        except asyncio.CancelledError:
            # Cancelled mid-flight (drain's timeout, shutdown): the acks may not have
            # reached Redis. Keep them for the next flush; an entry acked already is
            # neither acked nor counted again.
            self._requeue(acks, count)
            raise
        if not self._acks:
            self._idle.set()

    async def _send(self, acks: defaultdict[int, list[_Entry]]) -> None:
        keys = self._keys
        now_ms = time.time_ns() // 1_000_000
        calls: list[ScriptCall] = []
        for partition, entries in acks.items():
            head = (GROUP, now_ms, self._keep_ms, self._trim_now(partition), self._events)
            script_keys = (
                keys.stalls(partition),
                keys.attempts(partition),
                *keys.outcome_keys(partition, OutcomeState.DELIVERED, now_ms),
            )
            prefix = keys.batch_counts_prefix(partition)
            packed = _packer.encode(entries)
            calls.append((self._script, script_keys, (*head, prefix, packed, self._searchable)))
        await run_script_calls(self._client, calls)  # the partitions' calls are independent

    def _trim_now(self, partition: int) -> int:
        """The record count to trim ``partition`` to in this flush; 0 (none) if it was
        trimmed less than ``_TRIM_EVERY`` ago."""
        now = time.monotonic()
        if now - self._trimmed.get(partition, 0.0) < _TRIM_EVERY:
            return 0
        self._trimmed[partition] = now
        return self._keep_count

    def _requeue(self, acks: defaultdict[int, list[_Entry]], count: int) -> None:
        for partition, entries in acks.items():
            self._acks[partition][:0] = entries
        self._count += count
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
            _log.warning("ack_drain_timed_out", entries=self._count)
