"""Messages by state, a page at a time (``GET /v1/messages?state=...``), never loading a
whole set:

- ``delivered`` / ``dead_lettered``: the kept outcome records, newest first, from each
  partition's records index (a sorted set by time): per page one ZREVRANGEBYSCORE per
  partition bounded by the page size, merged, then one HMGET per partition.
- ``delayed``: soonest due first, from each partition's delayed set, the same way.
- ``in_flight``: what workers hold (the group's pending entries), at most ``limit``.
- ``waiting`` (or ``accepted``): ``ops.waiting_listing``, with its own cursor.

The cursor (``after``) is the last item's ``<ms>:<message id>``; a page may hold fewer
than ``limit`` items when a tenant filter skips others' (``next`` still advances).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from relayq.ops.message_page import ListedMessage, MessagePage, filtered_page
from relayq.ops.pending_entries import PendingFilter, read_pending
from relayq.ops.waiting_listing import list_waiting
from relayq.streams.codec import ENTRY_FIELD, readable_message
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeState, decode_record

__all__ = ("LISTABLE_STATES", "ORDERS", "list_messages")

LISTABLE_STATES = ("waiting", "delivered", "dead_lettered", "delayed", "in_flight")
_WAITING = ("waiting", "accepted")
_SCAN_FACTOR = 4
"""A page looks at up to this many times ``limit`` candidates when filtering by tenant."""


def _cursor(after: str | None) -> tuple[int, str] | None:
    if after is None:
        return None
    ms, _, message_id = after.partition(":")
    if not ms.isdigit() or not message_id:
        raise ValidationError("after", f"{after[:60]!r} is not a cursor (<ms>:<message id>)")
    return int(ms), message_id


ORDERS = ("newest", "oldest")
"""``order`` of a delivered, dead-lettered or delayed listing (the others have one order)."""


async def list_messages(
    client: Redis,
    keys: Keys,
    state: str,
    *,
    tenant: str | None,
    limit: int,
    after: str | None,
    order: str | None = None,
) -> MessagePage:
    """A page of ``state``; ``order`` (``newest`` or ``oldest`` first) for the states kept
    by time: delivered and dead-lettered default to newest first, delayed to soonest due
    (``oldest``). A cursor belongs to the order it was made in."""
    if state in _WAITING:
        return await list_waiting(client, keys, tenant=tenant, limit=limit, after=after)
    if state not in LISTABLE_STATES:
        raise ValidationError(
            "state", f"{state[:40]!r} cannot be listed; one of {', '.join(LISTABLE_STATES)}"
        )
    if order is not None and order not in ORDERS:
        raise ValidationError("order", f"{order[:20]!r} is not an order; one of newest, oldest")
    if state == "in_flight":
        return await _in_flight(client, keys, tenant, limit)
    newest_first = order == "newest" if order is not None else state != "delayed"
    return await _by_time(
        client, keys, state, tenant=tenant, limit=limit, after=_cursor(after),
        newest_first=newest_first,
    )  # fmt: skip


async def _by_time(
    client: Redis, keys: Keys, state: str, *, tenant: str | None, limit: int,
    after: tuple[int, str] | None, newest_first: bool,
) -> MessagePage:  # fmt: skip
    scan = limit * (_SCAN_FACTOR if tenant else 1)
    candidates = await _candidates(client, keys, state, scan, after, newest_first)
    ordered = sorted(candidates, key=lambda c: (c[0], c[1]), reverse=newest_first)
    chosen = ordered[:scan]
    items = await _load(client, keys, state, chosen)
    kept = [item for item in items if tenant is None or item.tenant == tenant]
    more = len(ordered) > scan  # candidates beyond what this page looked at
    return filtered_page(kept, limit, f"{chosen[-1][0]}:{chosen[-1][1]}" if more else None)


async def _candidates(
    client: Redis, keys: Keys, state: str, scan: int, after: tuple[int, str] | None,
    newest_first: bool,
) -> list[tuple[int, str, int]]:  # fmt: skip
    """(ms, message id, partition) of up to ``scan`` per partition past the cursor."""
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(keys.partitions):
            index = _index(keys, state, partition)
            if newest_first:
                high = "+inf" if after is None else after[0]
                pipe.zrevrangebyscore(index, high, "-inf", start=0, num=scan + 1, withscores=True)
            else:
                low = "-inf" if after is None else after[0]
                pipe.zrangebyscore(index, low, "+inf", start=0, num=scan + 1, withscores=True)
        replies = await pipe.execute()
    found = []
    for partition, reply in enumerate(replies):
        for member, score in reply:
            entry = (int(score), member.decode(), partition)
            if after is None or _past(entry, after, newest_first):
                found.append(entry)
    return found


def _past(entry: tuple[int, str, int], after: tuple[int, str], newest_first: bool) -> bool:
    if newest_first:
        return (entry[0], entry[1]) < after
    return (entry[0], entry[1]) > after


def _index(keys: Keys, state: str, partition: int) -> str:
    return keys.delayed(partition) if state == "delayed" else keys.outcome_index(partition, state)


async def _load(
    client: Redis, keys: Keys, state: str, chosen: list[tuple[int, str, int]]
) -> list[ListedMessage]:
    async with client.pipeline(transaction=False) as pipe:
        for _ms, message_id, partition in chosen:
            if state == "delayed":
                pipe.hget(keys.delayed_data(partition), message_id)
            else:
                pipe.hget(keys.outcomes(partition), message_id)
        blobs = await pipe.execute()
    items = []
    for (ms, message_id, partition), blob in zip(chosen, blobs, strict=True):
        if blob is None:
            continue  # trimmed between the two reads
        item = _delayed(blob, ms, message_id, partition) if state == "delayed" else None
        if state != "delayed":
            record = decode_record(blob)
            item = ListedMessage(message_id=message_id, state=record.state, at_ms=ms,
                                 partition=partition, tenant=record.tenant,
                                 conversation=record.conversation, priority=record.priority,
                                 record=record)  # fmt: skip
        if item is not None:
            items.append(item)
    return items


def _delayed(blob: bytes, due_ms: int, message_id: str, partition: int) -> ListedMessage | None:
    priority, _, encoded = blob.partition(b":")
    message = readable_message({ENTRY_FIELD: encoded})
    if message is None:
        return None
    return ListedMessage(message_id=message_id, state=OutcomeState.DELAYED.value, at_ms=due_ms,
                         partition=partition, tenant=message.tenant,
                         conversation=message.conversation, priority=priority.decode())  # fmt: skip


async def _in_flight(client: Redis, keys: Keys, tenant: str | None, limit: int) -> MessagePage:
    report = await read_pending(client, keys, PendingFilter(tenant=tenant, limit=limit))
    items: list[Any] = [
        ListedMessage(
            message_id=entry.message_id or "",
            state=OutcomeState.IN_FLIGHT.value,
            at_ms=report.at_ms - entry.idle_ms,
            partition=entry.partition,
            tenant=entry.tenant,
            conversation=entry.conversation,
            priority=entry.priority,
            worker=entry.consumer,
        )
        for entry in report.entries
        if entry.message_id
    ]
    return MessagePage(items=items, next=None)
