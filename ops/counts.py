"""Exact counts per priority level and tenant: what ``relayq status`` and the HTTP API show.

Per (level, tenant):

- ``waiting``: accepted, not yet read by a worker — the entries of the level's streams
  the group has not read (at most about ``read_count`` per stream) plus the tenant's
  waiting lists (LLEN each: no scan of a backlog). Exact.
- ``in_flight``: read by a worker and not finished (held in its memory or being sent):
  the group's pending entries without a backoff running. Exact.
- ``retrying``: pending entries whose last attempt failed and whose next attempt is not
  yet due (the ``{ns:P}:attempts`` record). Exact.
- ``delayed``: sent with a delay (or retried from a schedule) and not yet due. Exact;
  reading it decodes each delayed message (cost grows with the delayed set, not with the
  backlog).
- ``delivered`` / ``dead_lettered``: durable counters (``{ns:P}:counts``) written in the
  round trip that acknowledges or dead-letters, once per message (a redelivery after a
  crash that another owner acknowledged already is not counted again). Exact since the
  namespace was first used by a worker that keeps them.
- ``oldest_waiting_ms``: creation time (Unix ms) of the oldest waiting message.
- ``delivered_per_second`` / ``dead_lettered_per_second``: messages finished per second
  over the last minute — counted in 10-second buckets (``Keys.rate_bucket``) in the same
  script calls as the counters, so the window is the current bucket and the five before
  it: 50 to 60 s, divided by its exact length.

The work is a few pipelined round trips over the partitions; per partition it reads at
most one window of unread entries per level, the pending entries (bounded by the
workers' read-ahead) and one LLEN per waiting tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

from relayq.streams.codec import PoisonEntryError, decode_entry
from relayq.streams.keys import GROUP, RATE_BUCKET_MS, Keys
from relayq.streams.outcome import parse_counter_field
from relayq.streams.stream_groups import as_text, find_group

__all__ = ("NamespaceCounts", "TenantCounts", "read_counts")

_RATE_BUCKETS = 6
"""The current 10-second rate bucket and the five before it."""
_FINISHED = ("delivered", "dead_lettered")
"""The counter states a row has a total and a rate of."""
_UNREAD_BOUND = 100_000
"""Most unread entries read per stream (a namespace filled by the layout before fairness
can hold more; beyond this the waiting count of that stream is a lower bound)."""


class TenantCounts(msgspec.Struct, kw_only=True):
    priority: str
    tenant: str
    waiting: int = 0
    in_flight: int = 0
    retrying: int = 0
    delayed: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    oldest_waiting_ms: int | None = None
    delivered_per_second: float = 0.0
    dead_lettered_per_second: float = 0.0

    def saw_waiting(self, created_ms: int) -> None:
        self.waiting += 1
        if self.oldest_waiting_ms is None or created_ms < self.oldest_waiting_ms:
            self.oldest_waiting_ms = created_ms


class NamespaceCounts(msgspec.Struct, kw_only=True):
    namespace: str
    at_ms: int
    rows: list[TenantCounts]
    """One per (level, tenant) with anything to show, levels highest first."""
    dead_letter_entries: int
    """Entries in the dead-letter streams now (replayed and deleted ones are gone)."""
    unreadable: int = 0
    """Entries that do not decode as messages (poison): workers dead-letter them."""

    def total(self, field: str, priority: str | None = None) -> int:
        return sum(getattr(row, field) for row in self.rows if priority in (None, row.priority))


class _Tally:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], TenantCounts] = {}
        self.unreadable = 0
        self.finished: dict[bytes, int] = {}
        """Counter field -> total over the partitions read so far (parsed once, at the end:
        the same field is in every partition)."""
        self.rates: dict[bytes, float] = {}
        """Counter field -> messages per second over the rate window, likewise."""

    def row(self, priority: str, tenant: str) -> TenantCounts:
        key = (priority, tenant)
        found = self.rows.get(key)
        if found is None:
            found = self.rows[key] = TenantCounts(priority=priority, tenant=tenant)
        return found

    def message_of(self, fields: Any) -> Any:
        try:
            return decode_entry(fields)
        except PoisonEntryError:
            self.unreadable += 1
            return None


async def read_counts(client: Redis, keys: Keys) -> NamespaceCounts:
    """The counts of every partition (see the module docstring for each number)."""
    tally = _Tally()
    now_ms = time.time_ns() // 1_000_000
    # Partitions at once: their round trips overlap (each step of the tally between two
    # awaits is synchronous, so the shared tally needs no lock).
    dead = await asyncio.gather(
        *(_count_partition(client, keys, p, tally, now_ms) for p in range(keys.partitions))
    )
    _apply_finished(tally)
    order = {name: index for index, name in enumerate(keys.levels.names)}
    rows = sorted(tally.rows.values(), key=lambda r: (order.get(r.priority, 99), r.tenant))
    return NamespaceCounts(
        namespace=keys.namespace,
        at_ms=now_ms,
        rows=rows,
        dead_letter_entries=sum(dead),
        unreadable=tally.unreadable,
    )


async def _count_partition(
    client: Redis, keys: Keys, partition: int, tally: _Tally, now_ms: int
) -> int:
    levels = keys.levels.names
    async with client.pipeline(transaction=False) as pipe:
        for level in levels:
            pipe.xinfo_groups(keys.stream(partition, level))
            pipe.lrange(keys.ring(partition, level), 0, -1)
            pipe.xpending_range(keys.stream(partition, level), GROUP, "-", "+", _UNREAD_BOUND)
        pipe.hgetall(keys.counts(partition))
        pipe.hgetall(keys.attempts(partition))
        pipe.hvals(keys.delayed_data(partition))
        pipe.xlen(keys.dead_letter(partition))
        first_bucket, seconds = _rate_window(now_ms)
        for bucket in range(first_bucket, first_bucket + _RATE_BUCKETS):
            pipe.hgetall(keys.rate_bucket(partition, bucket))
        replies = await pipe.execute(raise_on_error=False)
    per_level = [replies[3 * i : 3 * i + 3] for i in range(len(levels))]
    counters, attempts, delayed, dead = replies[3 * len(levels) : 3 * len(levels) + 4]
    _count_counters(tally, counters)
    for bucket in replies[3 * len(levels) + 4 :]:
        _count_rates(tally, bucket, seconds)
    _count_delayed(tally, delayed)
    retrying = _retrying_ids(attempts, now_ms)
    for level, (groups, ring, pending) in zip(levels, per_level, strict=True):
        stream = keys.stream(partition, level)
        group = None if isinstance(groups, Exception) else find_group(groups)
        await _count_unread(client, stream, group, tally)
        await _count_lists(client, keys, partition, level, ring, tally)
        if group is not None:
            await _count_pending(client, stream, pending, retrying, tally)
    return int(dead)


def _count_counters(tally: _Tally, counters: dict[bytes, bytes]) -> None:
    finished = tally.finished
    for field, value in counters.items():
        finished[field] = finished.get(field, 0) + int(value)


def _apply_finished(tally: _Tally) -> None:
    """The summed counters and rates into their rows (one parse per distinct field)."""
    for sums, suffix in ((tally.finished, ""), (tally.rates, "_per_second")):
        for field, value in sums.items():
            state, priority, tenant = parse_counter_field(field.decode())
            if state in _FINISHED:
                row, name = tally.row(priority, tenant), state + suffix
                setattr(row, name, getattr(row, name) + value)


def _rate_window(now_ms: int) -> tuple[int, float]:
    """The first of the rate buckets to read, and the seconds they cover up to now."""
    first = now_ms // RATE_BUCKET_MS - (_RATE_BUCKETS - 1)
    return first, (now_ms - first * RATE_BUCKET_MS) / 1000


def _count_rates(tally: _Tally, bucket: dict[bytes, bytes], seconds: float) -> None:
    rates = tally.rates
    for field, value in bucket.items():
        rates[field] = rates.get(field, 0.0) + int(value) / seconds


def _count_delayed(tally: _Tally, blobs: Iterable[bytes]) -> None:
    for blob in blobs:
        priority, _, encoded = blob.partition(b":")
        message = tally.message_of({b"m": encoded})
        if message is not None:
            tally.row(priority.decode(), message.tenant).delayed += 1


def _retrying_ids(attempts: dict[bytes, bytes], now_ms: int) -> set[bytes]:
    """Entries whose next attempt is not due yet (``failed:next_ms`` records)."""
    retrying = set()
    for entry_id, record in attempts.items():
        _, _, next_ms = record.partition(b":")
        if next_ms.isdigit() and int(next_ms) > now_ms:
            retrying.add(entry_id)
    return retrying


async def _count_unread(
    client: Redis, stream: str, group: dict[str, Any] | None, tally: _Tally
) -> None:
    start = "-" if group is None else f"({as_text(group['last-delivered-id'])}"
    entries: Any = await client.xrange(stream, min=start, count=_UNREAD_BOUND)
    for _entry_id, fields in entries:
        message = tally.message_of(fields)
        if message is not None:
            tally.row(message.priority, message.tenant).saw_waiting(message.created_ms)


async def _count_lists(
    client: Redis, keys: Keys, partition: int, level: str, ring: Any, tally: _Tally
) -> None:
    tenants = [as_text(t) for t in ring] if not isinstance(ring, Exception) else []
    if not tenants:
        return
    async with client.pipeline(transaction=False) as pipe:
        for tenant in tenants:
            pipe.llen(keys.waiting(partition, level, tenant))
            pipe.lindex(keys.waiting(partition, level, tenant), 0)
        replies = await pipe.execute()
    for index, tenant in enumerate(tenants):
        length, head = int(replies[2 * index]), replies[2 * index + 1]
        if not length:
            continue
        row = tally.row(level, tenant)
        oldest = tally.message_of({b"m": head}) if head is not None else None
        if oldest is not None:
            row.saw_waiting(oldest.created_ms)
            length -= 1
        row.waiting += length


async def _count_pending(
    client: Redis, stream: str, pending: Any, retrying: set[bytes], tally: _Tally
) -> None:
    if isinstance(pending, Exception) or not pending:
        return
    ids = [entry["message_id"] for entry in pending]
    async with client.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xrange(stream, min=entry_id, max=entry_id)
        found = await pipe.execute()
    tenants: defaultdict[tuple[str, str], list[bytes]] = defaultdict(list)
    for entry_id, entries in zip(ids, found, strict=True):
        if not entries:
            continue  # trimmed or deleted while pending: nothing to count
        message = tally.message_of(entries[0][1])
        if message is not None:
            tenants[(message.priority, message.tenant)].append(entry_id)
    for (priority, tenant), entry_ids in tenants.items():
        row = tally.row(priority, tenant)
        late = sum(1 for entry_id in entry_ids if entry_id in retrying)
        row.retrying += late
        row.in_flight += len(entry_ids) - late
