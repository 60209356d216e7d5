"""Outcome events: what happened to each message, for applications to follow.

Workers publish an event when a message is delivered or dead-lettered (in the script that
finishes it: no round trip of its own) and when an attempt failed or was throttled, into
the partition's ``{ns:P}:events`` stream (``Settings.events_keep`` entries kept per
partition, approximately; 0 turns events off). Each entry holds ``state``, ``id`` (the
message id) and ``record`` (the outcome record as JSON: tenant, conversation, priority,
worker, attempts, provider message id, error, ...; ``streams.outcome``).

A reader follows every partition's stream with one XREAD. Its position is an
``EventCursor``: the last entry id read of each partition, as one text token
(``str(cursor)``) an application stores to resume after a restart without missing or
repeating an event (``Producer.events(after=token)``). Events of one conversation come in
order; events of different partitions are interleaved as the reads return them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from relayq.streams.errors import ValidationError
from relayq.streams.outcome import OutcomeRecord, decode_record

__all__ = ("START", "EventCursor", "OutcomeEvent", "decode_events", "last_positions")

START = "start"
"""``after=START``: every event still kept. (``after=None``: only events from now on.)"""
_PREFIX = "v1:"


class OutcomeEvent(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    """delivered, dead_lettered, retrying or throttled."""
    message_id: str
    record: OutcomeRecord
    partition: int
    event_id: str
    """The entry id in the partition's event stream."""
    cursor: str
    """Where a reader stood just after this event: pass it as ``after`` to resume."""


class EventCursor:
    """The last event id read of each partition."""

    def __init__(self, positions: Sequence[str]) -> None:
        self.positions = list(positions)

    @classmethod
    def start(cls, partitions: int) -> EventCursor:
        return cls(["0-0"] * partitions)

    @classmethod
    def parse(cls, token: str, partitions: int) -> EventCursor:
        """The cursor ``str(cursor)`` gave, or ``START``; a ValidationError naming the
        problem otherwise (a cursor from a namespace with another partition count too)."""
        if token == START:
            return cls.start(partitions)
        ids = token.removeprefix(_PREFIX).split(",") if token.startswith(_PREFIX) else []
        if len(ids) != partitions or not all(_is_entry_id(entry_id) for entry_id in ids):
            raise ValidationError(
                "cursor",
                f"{token[:60]!r} is not an events cursor of this namespace ({partitions} "
                f"partitions): pass the `cursor` of an event, or {START!r}",
            )
        return cls(ids)

    def __str__(self) -> str:
        return _PREFIX + ",".join(self.positions)


def _is_entry_id(text: str) -> bool:
    ms, _, seq = text.partition("-")
    return ms.isdigit() and seq.isdigit()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_events(
    reply: Any, stream_partition: dict[str, int], cursor: EventCursor
) -> tuple[list[OutcomeEvent], int]:
    """The events of one XREAD reply, in the order it gave them, each with the cursor just
    after it (``cursor`` is advanced as it goes), and how many entries the reply held. An
    entry that is not an event (written by hand) is skipped, never fatal."""
    events, read = [], 0
    for stream, entries in reply or ():
        read += len(entries)
        partition = stream_partition[_text(stream)]
        for entry_id, fields in entries:
            event_id = _text(entry_id)
            cursor.positions[partition] = event_id
            event = _event(fields, partition, event_id, str(cursor))
            if event is not None:
                events.append(event)
    return events, read


def last_positions(replies: Sequence[Any]) -> EventCursor:
    """The cursor at the end of each partition's stream, from one ``XREVRANGE key + -
    COUNT 1`` reply per partition (an empty stream: its start)."""
    return EventCursor([_text(reply[0][0]) if reply else "0-0" for reply in replies])


def _event(fields: dict[bytes, bytes], partition: int, event_id: str, cursor: str) -> Any:
    try:
        record = decode_record(fields[b"record"])
        return OutcomeEvent(
            state=fields[b"state"].decode(),
            message_id=fields[b"id"].decode(),
            record=record,
            partition=partition,
            event_id=event_id,
            cursor=cursor,
        )
    except (KeyError, UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError):
        return None
