"""Waiting messages (accepted, not yet read by a worker), a page at a time
(``GET /v1/messages?state=waiting``, ``relayq message list --state waiting``).

A waiting message is in one of two places per (partition, level): the stream's unread
window (entries past the group's last-delivered id) or its tenant's waiting list
(``streams/lua/_admit.lua``). A page walks them in a fixed order — partitions, then levels
highest first, then the unread window by entry id, then the tenants' lists by tenant name
and position — reading only as many as the page needs (XRANGE ``COUNT``, LRANGE of a
slice), never a whole backlog. The cursor records where the page stopped.

The queue moves while it is paged: a message admitted from its list into the stream
between two pages can be shown twice or not at all (the counts of ``/v1/stats`` are exact;
any one message is found by id). Within one tenant's list, the order is its send order.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import msgspec
from redis.asyncio import Redis

from relayq.ops.message_page import ListedMessage, MessagePage
from relayq.streams.codec import ENTRY_FIELD, readable_message
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.outcome import OutcomeState
from relayq.streams.stream_groups import as_text, find_group

__all__ = ("list_waiting",)

_PREFIX = "w1:"
_SCAN_FACTOR = 4
_UNREAD = ""
"""The ``source`` of a position in a stream's unread window (else: a tenant's list)."""


class _Position(msgspec.Struct, array_like=True, frozen=True):
    """Where a page stopped: the (partition, level) it was in, the source (``_UNREAD`` or
    a tenant) and the last item shown there (an entry id, or an index in the list)."""

    partition: int
    level: int
    source: str
    last: str


_position_decoder = msgspec.json.Decoder(_Position)


def _encode(position: _Position) -> str:
    raw = msgspec.json.encode(position)
    return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, keys: Keys) -> _Position:
    try:
        if not token.startswith(_PREFIX):
            raise ValueError
        text = token.removeprefix(_PREFIX)
        position = _position_decoder.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, msgspec.DecodeError):
        raise ValidationError(
            "after", f"{token[:60]!r} is not a cursor of the waiting list (a page's `next`)"
        ) from None
    levels = len(keys.levels.names)
    if not (0 <= position.partition < keys.partitions and 0 <= position.level < levels):
        raise ValidationError("after", "the cursor is of a namespace of another shape")
    return position


async def list_waiting(
    client: Redis, keys: Keys, *, tenant: str | None, limit: int, after: str | None
) -> MessagePage:
    """Up to ``limit`` waiting messages (of ``tenant`` only, if given) past ``after``."""
    start = _decode(after, keys) if after is not None else None
    layout = await _layout(client, keys)
    items: list[ListedMessage] = []
    for partition, level in _places(keys, start):
        last_delivered, ring = layout[(partition, level)]
        sources = [_UNREAD, *sorted(t for t in ring if tenant is None or t == tenant)]
        for source in sources:
            if start and _before(source, start, partition, level):
                continue
            here = start and (start.partition, start.level, start.source) == (
                partition, level, source)  # fmt: skip
            resume = start.last if start and here else None
            found, stopped = await _read_source(
                client, keys, (partition, level, source), last_delivered, resume,
                tenant, limit - len(items),
            )  # fmt: skip
            items += found
            if stopped is not None:  # the page is full, or looked at all it may
                return MessagePage(items=items, next=_encode(stopped))
    return MessagePage(items=items, next=None)


def _places(keys: Keys, start: _Position | None) -> Iterator[tuple[int, int]]:
    """(partition, level index) from the cursor's on, in page order."""
    levels = len(keys.levels.names)
    first = (start.partition, start.level) if start else (0, 0)
    for partition in range(first[0], keys.partitions):
        for level in range(levels):
            if (partition, level) >= first:
                yield partition, level


def _before(source: str, start: _Position, partition: int, level: int) -> bool:
    """Whether ``source`` of (partition, level) comes before the cursor's source there."""
    if (partition, level) != (start.partition, start.level):
        return False
    if start.source == _UNREAD:
        return False
    return source == _UNREAD or source < start.source


async def _layout(client: Redis, keys: Keys) -> dict[tuple[int, int], tuple[str, list[str]]]:
    """Per (partition, level index): the group's last-delivered id and the ring's tenants,
    in one round trip."""
    places = [(p, i, level) for p in range(keys.partitions)
              for i, level in enumerate(keys.levels.names)]  # fmt: skip
    async with client.pipeline(transaction=False) as pipe:
        for partition, _, level in places:
            pipe.xinfo_groups(keys.stream(partition, level))
            pipe.lrange(keys.ring(partition, level), 0, -1)
        replies = await pipe.execute(raise_on_error=False)
    layout = {}
    for index, (partition, level_index, _) in enumerate(places):
        groups, ring = replies[2 * index], replies[2 * index + 1]
        group = None if isinstance(groups, Exception) else find_group(groups)
        last = "0-0" if group is None else as_text(group["last-delivered-id"])
        tenants = [] if isinstance(ring, Exception) else [as_text(t) for t in ring]
        layout[(partition, level_index)] = (last, tenants)
    return layout


async def _read_source(
    client: Redis, keys: Keys, place: tuple[int, int, str], last_delivered: str,
    resume: str | None, tenant: str | None, room: int,
) -> tuple[list[ListedMessage], _Position | None]:  # fmt: skip
    """The waiting messages of one source past ``resume``, up to ``room`` of them, and the
    position of the last one looked at (None: the source is exhausted)."""
    partition, level_index, source = place
    level = keys.levels.names[level_index]
    if source == _UNREAD:
        return await _read_unread(client, keys, (partition, level_index), last_delivered,
                                  resume, tenant, room)  # fmt: skip
    first = int(resume) + 1 if resume is not None and resume.isdigit() else 0
    blobs: Any = await client.lrange(keys.waiting(partition, level, source), first,
                                     first + room - 1)  # fmt: skip
    items = [_listed(_message_of(blob), partition, level) for blob in blobs]
    found = [item for item in items if item is not None]
    if len(blobs) < room:
        return found, None
    return found, _Position(partition, level_index, source, str(first + len(blobs) - 1))


async def _read_unread(
    client: Redis, keys: Keys, place: tuple[int, int], last_delivered: str,
    resume: str | None, tenant: str | None, room: int,
) -> tuple[list[ListedMessage], _Position | None]:  # fmt: skip
    """The stream's unread entries past ``resume`` (and the last-delivered id); with a
    tenant, up to ``_SCAN_FACTOR`` times ``room`` of them are looked at."""
    partition, level_index = place
    level = keys.levels.names[level_index]
    begin = resume if resume is not None and _later(resume, last_delivered) else last_delivered
    scan = room * (_SCAN_FACTOR if tenant else 1)
    entries: Any = await client.xrange(keys.stream(partition, level), min=f"({begin}",
                                       count=scan)  # fmt: skip
    found: list[ListedMessage] = []
    for entry_id, fields in entries:
        item = _listed(readable_message(fields), partition, level)
        if item is not None and (tenant is None or item.tenant == tenant):
            found.append(item)
            if len(found) == room:
                return found, _Position(partition, level_index, _UNREAD, as_text(entry_id))
    if len(entries) == scan:  # more beyond what this page looked at
        return found, _Position(partition, level_index, _UNREAD, as_text(entries[-1][0]))
    return found, None


def _later(entry_id: str, than: str) -> bool:
    def parts(text: str) -> tuple[int, int]:
        ms, _, seq = text.partition("-")
        return int(ms), int(seq or 0)

    try:
        return parts(entry_id) > parts(than)
    except ValueError:
        raise ValidationError("after", f"{entry_id[:40]!r} is not a stream entry id") from None


def _message_of(blob: bytes) -> Message | None:
    """The message of a waiting list's item (an entry's encoded message)."""
    return readable_message({ENTRY_FIELD: blob})


def _listed(message: Message | None, partition: int, level: str) -> ListedMessage | None:
    if message is None:
        return None
    return ListedMessage(message_id=message.id, state=OutcomeState.ACCEPTED.value,
                         at_ms=message.created_ms, partition=partition, tenant=message.tenant,
                         conversation=message.conversation, priority=level)  # fmt: skip
