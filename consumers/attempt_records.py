"""What an attempt that did not finish its message leaves in Redis, in one call of
``record_attempt_4.lua``: a failure's count and backoff (``{ns:P}:attempts``), the
attempt's stall mark taken back (see stall_marks), the message's outcome record (retrying,
with the next attempt's time and the error, the attempt noted in its ``history``) and its
outcome event (retrying or throttled).

A throttle is noted in the history too (kind ``throttled``; it used no attempt, so its
number is that of the attempt it held back, made again). Finishing attempts write their
records in their own scripts (``acknowledge_8.lua``, ``dead_letter_11.lua``), which carry
the history on.
"""

from __future__ import annotations

import time

from relayq.consumers.envelope import Envelope
from relayq.streams.keys import Keys
from relayq.streams.outcome import (
    HISTORY_KEEP,
    THROTTLED,
    OutcomeState,
    attempt_note,
    message_record,
)
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

__all__ = ("THROTTLED_EVENT", "AttemptRecords")

THROTTLED_EVENT = THROTTLED
"""The state an outcome event of a throttled attempt carries (its record says retrying),
and the kind of a throttle's attempt note."""


class AttemptRecords:
    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings, worker: str) -> None:
        self._scripts = scripts
        self._keys = keys
        self._worker = worker
        self._records = settings.outcome_records
        self._events = settings.events_keep

    async def failed(self, envelope: Envelope, next_ms: int, error: str, kind: str) -> None:
        """A failed attempt that will be retried at ``next_ms`` (Unix ms); raises what
        Redis raised."""
        attempts = f"{envelope.failed_attempts}:{next_ms}"
        note = envelope.failed_attempts
        await self._record(envelope, attempts, OutcomeState.RETRYING, next_ms, error, kind, note)

    async def throttled(self, envelope: Envelope, wait: float, reason: str) -> None:
        """An attempt the provider throttled (no attempt used): the next one waits ``wait``
        seconds at least. Raises what Redis raised."""
        next_ms = time.time_ns() // 1_000_000 + round(wait * 1000)
        note = envelope.failed_attempts + 1
        await self._record(envelope, "", THROTTLED_EVENT, next_ms, reason, THROTTLED_EVENT, note)

    async def _record(
        self,
        envelope: Envelope,
        attempts: str,
        event: str,
        next_ms: int,
        error: str,
        kind: str,
        attempt: int,
    ) -> None:
        partition = envelope.state.partition
        record, note = b"", b""
        if self._records or self._events:
            now_ms = time.time_ns() // 1_000_000
            record = message_record(
                envelope.message,
                OutcomeState.RETRYING,
                partition=partition,
                entry_id=envelope.entry_id,
                worker=self._worker,
                attempts=envelope.failed_attempts,
                at_ms=now_ms,
                next_attempt_ms=next_ms,
                error=error[:1000],
                kind=kind,
            )
            note = attempt_note(attempt, now_ms, kind, error, self._worker)
        keys = self._keys
        await self._scripts.record_attempt(
            keys=(
                keys.attempts(partition),
                keys.stalls(partition),
                keys.outcomes(partition),
                keys.events(partition),
            ),
            args=(
                envelope.entry_id,
                attempts,
                envelope.message.id,
                record,
                note,
                HISTORY_KEEP,
                "1" if self._records else "",
                self._events,
                event,
            ),
        )
