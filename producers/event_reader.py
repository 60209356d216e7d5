"""Reading outcome events (``streams.outcome_events``) for ``Producer.events()`` and
``SyncProducer.events()``: one XREAD over every partition's event stream per round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import redis
from redis.asyncio import Redis

from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.outcome_events import (
    EventCursor,
    OutcomeEvent,
    decode_events,
    last_positions,
)

__all__ = ("block_ms", "read_events", "read_events_sync")

_COUNT = 500
"""Most events per partition per read."""


def block_ms(seconds: float) -> int:
    """A reader's wait per read, checked: more than 0, at most 60 seconds."""
    if not 0 < seconds <= 60:
        raise ValidationError("block", f"must be more than 0 and at most 60 seconds, got {seconds}")
    return max(1, round(seconds * 1000))


def _streams(keys: Keys) -> dict[str, int]:
    return {keys.events(partition): partition for partition in range(keys.partitions)}


def _positions(streams: dict[str, int], cursor: EventCursor) -> dict[str, str]:
    return {stream: cursor.positions[partition] for stream, partition in streams.items()}


async def read_events(
    client: Redis, keys: Keys, *, after: str | None, follow: bool, block_ms: int
) -> AsyncIterator[OutcomeEvent]:
    """Events after ``after`` (a cursor, ``START``, or None: from now on), in order per
    partition; with ``follow`` waits for new ones forever, else stops at the end."""
    streams = _streams(keys)
    if after is None:
        async with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrevrange(stream, count=1)
            cursor = last_positions(await pipe.execute())
    else:
        cursor = EventCursor.parse(after, keys.partitions)
    while True:
        reply = await client.xread(
            _positions(streams, cursor),  # type: ignore[arg-type]
            count=_COUNT,
            block=block_ms if follow else None,
        )
        events, read = decode_events(reply, streams, cursor)
        for event in events:
            yield event
        if not read and not follow:
            return


def read_events_sync(
    client: redis.Redis, keys: Keys, *, after: str | None, follow: bool, block_ms: int
) -> Iterator[OutcomeEvent]:
    """``read_events`` for the blocking client."""
    streams = _streams(keys)
    if after is None:
        with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrevrange(stream, count=1)
            cursor = last_positions(pipe.execute())
    else:
        cursor = EventCursor.parse(after, keys.partitions)
    while True:
        reply = client.xread(
            _positions(streams, cursor),  # type: ignore[arg-type]
            count=_COUNT,
            block=block_ms if follow else None,
        )
        events, read = decode_events(reply, streams, cursor)
        yield from events
        if not read and not follow:
            return
