"""Reading one owned partition: first reclaim what earlier owners left pending, then new entries
(admitted tenant by tenant: ``fair_read``; a blocking read only while nothing waits).

Reclaimed entries (XAUTOCLAIM from 0-0, min idle 0: the lease guarantees the earlier owner
has stopped) all have lower ids than any unread entry, so per-conversation order holds
across the hand-over. A reclaimed entry brings its attempts record and its stall marks
(attempts started and never finished, see stall_marks); one that stalled more than
``max_stalls`` times is dead-lettered as ``stalled`` instead of being sent again. Entries
that do not decode are dead-lettered on first sight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis.exceptions
import structlog
from redis.asyncio import Redis

from relayq.consumers.conversation_scheduler import ConversationScheduler
from relayq.consumers.dead_letters import DeadLetterKind, DeadLetters
from relayq.consumers.envelope import Envelope, PartitionState
from relayq.consumers.fair_read import FairRead, StreamBatch
from relayq.consumers.metrics import WorkerMetrics
from relayq.consumers.stall_marks import stall_count
from relayq.streams.codec import PoisonEntryError, decode_entry
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message
from relayq.streams.namespace_shape import check_namespace
from relayq.streams.redis_client import REDIS_UNAVAILABLE
from relayq.streams.stream_groups import ensure_groups

__all__ = ("PartitionReader",)

_log = structlog.get_logger(__name__)
RawEntry = tuple[bytes, dict[bytes, bytes] | None]
"""An entry as read: XAUTOCLAIM gives None fields for one deleted while pending."""
Records = dict[bytes, tuple[bytes | None, bytes | None]]
"""Entry id -> (attempts record, stall mark) of reclaimed entries."""
_TRANSIENT_PAUSE = 0.2
_NO_RECORDS: Records = {}
_GROUP_GONE = ("NOGROUP", "UNBLOCKED")
"""Errors of a read whose stream or group was deleted (before it, or while it blocked)."""
_RECLAIMED = "done"
"""A reclaim cursor past the last pending entry (XAUTOCLAIM answered 0-0)."""


class PartitionReader:
    def __init__(
        self,
        *,
        client: Redis,
        keys: Keys,
        consumer: str,
        read_count: int,
        block_ms: int,
        max_stalls: int,
        scheduler: ConversationScheduler,
        dead_letters: DeadLetters,
        metrics: WorkerMetrics,
        fair_read: FairRead,
    ) -> None:
        self._client = client
        self._keys = keys
        self._consumer = consumer
        self._count = read_count
        self._block_ms = block_ms
        self._max_stalls = max_stalls
        self._scheduler = scheduler
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._fair_read = fair_read

    async def run(self, state: PartitionState) -> None:
        """Read the partition until cancelled or the state goes inactive."""
        streams = self._keys.streams(state.partition)
        await self._take_over(state, streams)
        taken = dict.fromkeys(streams, 0)
        admit = True
        while await self._scheduler.wait_for_room(state):
            try:
                batches: list[StreamBatch] = []
                waiting = False
                if admit:
                    batches, waiting = await self._fair_read.read(state.partition, taken)
                    taken = dict.fromkeys(streams, 0)
                if not batches and not waiting:
                    batches = await self._wait_for_entries(streams)
                    for stream_name, entries in batches:
                        taken[stream_name] += len(entries)
                    admit = self._admit_next(batches, taken)
            except REDIS_UNAVAILABLE as exc:
                # A read timeout (the process was frozen, Redis was slow) or a dropped
                # connection: nothing was lost (what a lost reply delivered stays pending
                # and comes back through XAUTOCLAIM on the next tenure); read again.
                _log.warning("partition_read_failed", partition=state.partition, error=str(exc))
                await asyncio.sleep(_TRANSIENT_PAUSE)
                continue
            except redis.exceptions.ResponseError as exc:
                if not str(exc).startswith(_GROUP_GONE):
                    raise
                await self._recreate_groups(state, streams, str(exc))
                continue
            for stream_name, entries in batches:
                await self._feed(state, stream_name, entries, _NO_RECORDS)

    def _admit_next(self, batches: list[StreamBatch], taken: dict[str, int]) -> bool:
        """Whether the next read goes through ``admit_and_read`` rather than straight back
        to a blocking read. At a low rate every entry arrives alone; an admission round
        trip after each would double the reads (and the latency). Nothing can wait while
        the last admission left none waiting and the streams' unread counters overstate
        the truth by less than the admission window: so admit again only when the blocking
        read came back empty (its time ran out) or once a quarter window was taken."""
        return not batches or sum(taken.values()) >= max(1, self._count // 4)

    async def _wait_for_entries(self, streams: Sequence[str]) -> list[StreamBatch]:
        """Nothing unread and nothing waiting: block until a producer adds an entry (it
        goes straight into a stream then: the window is empty), up to ``block_ms``."""
        reply: list[Any] = await self._client.xreadgroup(  # type: ignore[assignment]
            GROUP,
            self._consumer,
            dict.fromkeys(streams, ">"),
            count=self._count,
            block=self._block_ms,
        )
        return [(stream.decode(), entries) for stream, entries in reply or ()]

    async def _take_over(self, state: PartitionState, streams: Sequence[str]) -> None:
        """Create missing groups (and the namespace's partition count, should Redis have
        lost it) and queue what earlier owners left pending, retrying while Redis is away;
        a retry resumes each reclaim where it stopped (nothing is fed twice)."""
        reclaimed: dict[str, bytes | str] = dict.fromkeys(streams, "0-0")
        while state.active:
            try:
                await check_namespace(self._client, self._keys)
                await ensure_groups(self._client, streams)
                for stream in streams:
                    await self._reclaim(state, stream, reclaimed)
                return
            except REDIS_UNAVAILABLE as exc:
                _log.warning(
                    "partition_take_over_failed", partition=state.partition, error=str(exc)
                )
                await asyncio.sleep(_TRANSIENT_PAUSE)

    async def _recreate_groups(
        self, state: PartitionState, streams: Sequence[str], error: str
    ) -> None:
        """The group is gone: Redis lost its data (restarted without persistence, flushed).
        What was queued is lost with it; recreate the groups and the namespace's record of
        its partition count, and read on."""
        _log.warning(
            "consumer_group_missing",
            partition=state.partition,
            error=error,
            hint="Redis lost its data (restarted without persistence?); groups recreated",
        )
        try:
            await check_namespace(self._client, self._keys)
            await ensure_groups(self._client, streams)
        except REDIS_UNAVAILABLE:
            await asyncio.sleep(_TRANSIENT_PAUSE)

    async def _reclaim(
        self, state: PartitionState, stream: str, reclaimed: dict[str, bytes | str]
    ) -> None:
        """XAUTOCLAIM ``stream`` from ``reclaimed[stream]`` on, advancing it past each batch
        once the batch is queued."""
        while state.active and reclaimed[stream] != _RECLAIMED:
            reply: list[Any] = await self._client.xautoclaim(
                stream, GROUP, self._consumer, 0, start_id=reclaimed[stream], count=self._count
            )
            cursor, entries = reply[0], reply[1]
            live = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
            gone = [entry_id for entry_id, fields in entries if fields is None]
            if len(reply) > 2:
                gone.extend(reply[2])
            if gone:  # deleted from the stream while pending: nothing left to deliver
                await self._client.xack(stream, GROUP, *gone)
            if live:
                records = await self._records(state.partition, [entry_id for entry_id, _ in live])
                await self._feed(state, stream, live, records)
            reclaimed[stream] = _RECLAIMED if cursor in (b"0-0", "0-0") else cursor

    async def _records(self, partition: int, entry_ids: list[bytes]) -> Records:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.attempts(partition), entry_ids)
            pipe.hmget(self._keys.stalls(partition), entry_ids)
            attempts, stalls = await pipe.execute()
        return dict(zip(entry_ids, zip(attempts, stalls, strict=True), strict=True))

    async def _feed(
        self,
        state: PartitionState,
        stream: str,
        entries: Sequence[RawEntry],
        records: Records,
    ) -> None:
        scheduler = self._scheduler
        level = self._keys.priority_of_stream(stream)
        for entry_id, fields in entries:
            try:
                message = decode_entry(fields or {})
                _check_level(message, level)
            except PoisonEntryError as exc:
                await self._give_up(stream, entry_id, str(exc), DeadLetterKind.POISON, 0)
                continue
            envelope = Envelope(state, stream, entry_id, message)
            attempts, mark = records.get(entry_id, (None, None))
            if attempts:
                _apply_attempts_record(envelope, attempts)
            stalls = stall_count(mark)
            if stalls > self._max_stalls:
                error = (
                    f"stalled {stalls} times (attempts started and never finished: the worker "
                    f"died or was stopped mid-send); max_stalls is {self._max_stalls}"
                )
                kind, failed = DeadLetterKind.STALLED, envelope.failed_attempts
                await self._give_up(stream, entry_id, error, kind, failed, envelope.message)
                continue
            scheduler.add(envelope)

    async def _give_up(
        self,
        stream: str,
        entry_id: bytes,
        error: str,
        kind: str,
        attempts: int,
        message: Message | None = None,
    ) -> None:
        """Dead-letter an entry that must not be sent (poison, or stalled too often)."""
        try:
            moved = await self._dead_letters.move(
                stream, entry_id, error=error, kind=kind, attempts=attempts, message=message
            )
        except REDIS_UNAVAILABLE as exc:
            _log.warning(
                "dead_letter_failed", entry_id=entry_id.decode(), kind=kind, error=str(exc)
            )
            return  # still pending: the next owner or reclaim sees it again
        if moved:
            self._metrics.add_dead_lettered(message)
        _log.warning(
            "dead_lettered", stream=stream, entry_id=entry_id.decode(), kind=kind, error=error
        )


def _apply_attempts_record(envelope: Envelope, record: bytes) -> None:
    failed, _, next_ms = record.partition(b":")
    try:
        envelope.failed_attempts = int(failed)
        wait = (int(next_ms or 0) - time.time_ns() // 1_000_000) / 1000
    except ValueError:
        return
    if wait > 0:
        envelope.not_before = time.monotonic() + wait


def _check_level(message: Message, level: str) -> None:
    """A message is served at its stream's level; one that names another level was not
    written by a producer of this namespace (or its levels were changed by hand)."""
    if message.priority != level:
        raise PoisonEntryError(
            f"invalid priority: {message.priority!r} found in the stream of level {level!r}"
        )
