"""Reading outcome events (``streams.outcome_events``) for ``Producer.events()`` and
``SyncProducer.events()``: one XREAD over every partition's event stream per round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

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


class _Reading:
    """What the async and blocking readers share: the streams, the cursor, each XREAD's
    arguments and what its reply holds (the readers only do the I/O)."""

    def __init__(self, keys: Keys, after: str | None, follow: bool, block_ms: int) -> None:
        self.streams = {keys.events(p): p for p in range(keys.partitions)}
        self.from_now = after is None
        self.cursor = EventCursor.start(keys.partitions)
        if after is not None:
            self.cursor = EventCursor.parse(after, keys.partitions)
        self.follow, self.block_ms = follow, block_ms

    def ask_latest(self, pipe: Any) -> None:
        """Queue on ``pipe`` the reads of each stream's last event (for ``from_now``)."""
        for stream in self.streams:
            pipe.xrevrange(stream, count=1)

    def read_arguments(self) -> dict[str, Any]:
        positions = {stream: self.cursor.positions[p] for stream, p in self.streams.items()}
        return {"streams": positions, "count": _COUNT,
                "block": self.block_ms if self.follow else None}  # fmt: skip

    def take(self, reply: Any) -> tuple[list[OutcomeEvent], bool]:
        """The events of an XREAD reply (the cursor moves past them), and whether the
        reader goes on."""
        events, read = decode_events(reply, self.streams, self.cursor)
        return events, bool(read) or self.follow


async def read_events(
    client: Redis, keys: Keys, *, after: str | None, follow: bool, block_ms: int
) -> AsyncIterator[OutcomeEvent]:
    """Events after ``after`` (a cursor, ``START``, or None: from now on), in order per
    partition; with ``follow`` waits for new ones forever, else stops at the end."""
    reading = _Reading(keys, after, follow, block_ms)
    if reading.from_now:
        async with client.pipeline(transaction=False) as pipe:
            reading.ask_latest(pipe)
            reading.cursor = last_positions(await pipe.execute())
    going = True
    while going:
        events, going = reading.take(await client.xread(**reading.read_arguments()))
        for event in events:
            yield event


def read_events_sync(
    client: redis.Redis, keys: Keys, *, after: str | None, follow: bool, block_ms: int
) -> Iterator[OutcomeEvent]:
    """``read_events`` for the blocking client."""
    reading = _Reading(keys, after, follow, block_ms)
    if reading.from_now:
        with client.pipeline(transaction=False) as pipe:
            reading.ask_latest(pipe)
            reading.cursor = last_positions(pipe.execute())
    going = True
    while going:
        events, going = reading.take(client.xread(**reading.read_arguments()))
        yield from events
