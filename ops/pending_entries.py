"""Pending entries (read by a worker, not yet acknowledged): XPENDING per consumer and
per partition, and the entries themselves, filtered.

The summary is exact (one XPENDING per stream). The entries are paged with the extended
XPENDING form (consumer and idle filters run in Redis), then read with XRANGE for their
message id, tenant and conversation (the tenant filter needs them); at most ``limit``
entries are returned, ``truncated`` says whether more matched.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from relayq.ops.live_workers import live_workers, redis_now_ms
from relayq.streams.codec import readable_message
from relayq.streams.keys import GROUP, Keys
from relayq.streams.stream_groups import as_text

__all__ = (
    "ConsumerPending",
    "PartitionPending",
    "PendingEntry",
    "PendingFilter",
    "PendingReport",
    "read_pending",
)

_PAGE = 500


class PendingFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which pending entries to list (every field narrows; defaults take all)."""

    partition: int | None = None
    consumer: str | None = None
    tenant: str | None = None
    min_idle_ms: int = 0
    min_deliveries: int = 0
    limit: int = 100


class PendingEntry(msgspec.Struct, kw_only=True):
    partition: int
    priority: str
    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int
    """Times the group handed it out (XPENDING's delivery count)."""
    message_id: str | None = None
    tenant: str | None = None
    conversation: str | None = None
    """None for an entry deleted while pending, or one that does not decode."""
    consumer_live: bool = False
    partition_leased: bool = True
    """Whether a worker holds the partition's lease (then nothing of it can be released)."""


class ConsumerPending(msgspec.Struct, kw_only=True):
    consumer: str
    pending: int
    live: bool


class PartitionPending(msgspec.Struct, kw_only=True):
    partition: int
    pending: int
    leased: bool
    lease_ms_left: int | None
    """Milliseconds until the lease runs out unless renewed (None: no lease)."""


class PendingReport(msgspec.Struct, kw_only=True):
    namespace: str
    at_ms: int
    partitions: list[PartitionPending]
    consumers: list[ConsumerPending]
    entries: list[PendingEntry]
    truncated: bool
    """More entries matched than ``limit``."""

    @property
    def total(self) -> int:
        return sum(p.pending for p in self.partitions)


async def read_pending(client: Redis, keys: Keys, chosen: PendingFilter) -> PendingReport:
    """The pending summary of the chosen partitions (all by default) and the entries
    that pass ``chosen``."""
    partitions = range(keys.partitions) if chosen.partition is None else (chosen.partition,)
    live = await live_workers(client, keys)
    now_ms = await redis_now_ms(client)
    per_partition: list[PartitionPending] = []
    per_consumer: dict[str, int] = {}
    entries: list[PendingEntry] = []
    truncated = False
    for partition in partitions:
        summary, busy = await _summarise(client, keys, partition, per_consumer)
        per_partition.append(summary)
        for stream in busy:
            room = chosen.limit - len(entries)
            found, more = await _entries(client, keys, stream, chosen, room + 1)
            truncated = truncated or more or len(found) > room
            entries.extend(found[:room])
    for entry in entries:
        entry.consumer_live = entry.consumer in live
        entry.partition_leased = _leased(per_partition, entry.partition)
    consumers = [
        ConsumerPending(consumer=name, pending=count, live=name in live)
        for name, count in sorted(per_consumer.items())
    ]
    return PendingReport(
        namespace=keys.namespace,
        at_ms=now_ms,
        partitions=per_partition,
        consumers=consumers,
        entries=entries,
        truncated=truncated,
    )


def _leased(partitions: list[PartitionPending], partition: int) -> bool:
    return next((p.leased for p in partitions if p.partition == partition), True)


async def _summarise(
    client: Redis, keys: Keys, partition: int, per_consumer: dict[str, int]
) -> tuple[PartitionPending, list[str]]:
    """The partition's pending count and lease, adding its consumers' counts to
    ``per_consumer``; and its streams with anything pending."""
    streams = keys.streams(partition)
    async with client.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xpending(stream, GROUP)
        pipe.pttl(keys.lease(partition))
        replies = await pipe.execute(raise_on_error=False)
    total, busy = 0, []
    for stream, reply in zip(streams, replies[:-1], strict=True):
        if isinstance(reply, Exception) or not reply["pending"]:
            continue  # no stream or no group yet: nothing pending
        total += int(reply["pending"])
        busy.append(stream)
        for consumer in reply["consumers"]:
            name = as_text(consumer["name"])
            per_consumer[name] = per_consumer.get(name, 0) + int(consumer["pending"])
    ttl = replies[-1]
    leased = not isinstance(ttl, Exception) and int(ttl) != -2
    summary = PartitionPending(
        partition=partition,
        pending=total,
        leased=leased,
        lease_ms_left=int(ttl) if leased and int(ttl) >= 0 else None,
    )
    return summary, busy


async def _entries(
    client: Redis, keys: Keys, stream: str, chosen: PendingFilter, wanted: int
) -> tuple[list[PendingEntry], bool]:
    """Up to ``wanted`` entries of ``stream`` passing ``chosen``, and whether the pages
    were cut short (more may match)."""
    found: list[PendingEntry] = []
    start = "-"
    while len(found) < wanted:
        page: list[dict[str, Any]] = await client.xpending_range(
            stream,
            GROUP,
            min=start,
            max="+",
            count=_PAGE,
            consumername=chosen.consumer,
            idle=chosen.min_idle_ms or None,
        )
        rows = [row for row in page if int(row["times_delivered"]) >= chosen.min_deliveries]
        found.extend(await _described(client, keys, stream, rows, chosen.tenant))
        if len(page) < _PAGE:
            return found, False
        start = f"({as_text(page[-1]['message_id'])}"
    return found, True


async def _described(
    client: Redis, keys: Keys, stream: str, rows: list[dict[str, Any]], tenant: str | None
) -> list[PendingEntry]:
    """The pending rows as entries, with what their stream entries say (XRANGE each)."""
    if not rows:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.xrange(stream, min=row["message_id"], max=row["message_id"])
        ranges = await pipe.execute()
    partition, priority = keys.partition_of_key(stream), keys.priority_of_stream(stream)
    described = []
    for row, found in zip(rows, ranges, strict=True):
        entry = PendingEntry(
            partition=partition,
            priority=priority,
            entry_id=as_text(row["message_id"]),
            consumer=as_text(row["consumer"]),
            idle_ms=int(row["time_since_delivered"]),
            deliveries=int(row["times_delivered"]),
        )
        _describe(entry, found)
        if tenant is None or entry.tenant == tenant:
            described.append(entry)
    return described


def _describe(entry: PendingEntry, found: Any) -> None:
    if not found:
        return  # deleted while pending
    message = readable_message(found[0][1])
    if message is None:
        return
    entry.message_id = message.id
    entry.tenant = message.tenant
    entry.conversation = message.conversation
