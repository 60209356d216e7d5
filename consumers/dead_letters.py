"""Moving entries to the partition's dead-letter stream (``dead_letter_11.lua``), counted
(``{ns:P}:counts``) and recorded (``streams.outcome``) in the same call."""

from __future__ import annotations

import enum
import time

from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message
from relayq.streams.outcome import OutcomeState, counter_field, message_record
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

__all__ = ("DeadLetterKind", "DeadLetters")


class DeadLetterKind(enum.StrEnum):
    """Why an entry was dead-lettered (the DLQ entry's ``kind`` field)."""

    PERMANENT = "permanent"
    EXHAUSTED = "exhausted"
    STALLED = "stalled"
    """Its attempts were cut off mid-send (worker killed, out of memory, a crashing
    deliverer) more than ``max_stalls`` times."""
    POISON = "poison"


class DeadLetters:
    def __init__(self, scripts: Scripts, keys: Keys, consumer: str, settings: Settings) -> None:
        self._scripts = scripts
        self._keys = keys
        self._consumer = consumer
        self._keep_ms = round(settings.keep_dead_lettered * 1000)
        self._keep_count = settings.keep_dead_lettered_count
        self._events = settings.events_keep
        self._searchable = "1" if settings.search_index else ""

    async def move(
        self,
        stream: str,
        entry_id: bytes,
        *,
        error: str,
        kind: str,
        attempts: int,
        message: Message | None = None,
    ) -> bool:
        """Dead-letter and acknowledge one pending entry; False if it was no longer pending.
        ``message``: what the entry holds (None for a poison entry: not counted, no record)."""
        partition = self._keys.partition_of_key(stream)
        now_ms = time.time_ns() // 1_000_000
        error = error[:4000]
        field, message_id, record = "", "", b""
        if message is not None:
            field = counter_field(OutcomeState.DEAD_LETTERED, message.priority, message.tenant)
            message_id = message.id
            record = message_record(
                message,
                OutcomeState.DEAD_LETTERED,
                partition=partition,
                entry_id=entry_id,
                worker=self._consumer,
                attempts=attempts,
                at_ms=now_ms,
                error=error,
                kind=kind,
            )
        keys = self._keys
        reply = await self._scripts.dead_letter(
            keys=(
                stream,
                keys.dead_letter(partition),
                keys.attempts(partition),
                keys.stalls(partition),
                *keys.outcome_keys(partition, OutcomeState.DEAD_LETTERED, now_ms),
                keys.dead_letter_index(partition),
            ),
            args=(
                GROUP,
                entry_id,
                error,
                kind,
                attempts,
                now_ms,
                self._consumer,
                field,
                message_id,
                record,
                self._keep_ms,
                self._keep_count,
                self._events,
                keys.batch_counts_prefix(partition),
                (message.batch if message is not None else None) or "",
                message.tenant if message is not None else "",
                self._searchable,
            ),
        )
        return reply is not None
