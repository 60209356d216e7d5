"""What an attempt that did not finish its message leaves in Redis, in one pipelined round
trip: a failure's count and backoff (``{ns:P}:attempts``), the attempt's stall mark taken
back (see stall_marks), the message's outcome record (retrying, with the next attempt's
time and the error) and its outcome event (retrying or throttled).

Finishing attempts write theirs in their own scripts (``acknowledge_7.lua``,
``dead_letter_9.lua``); these are rarer, so plain pipelined commands do.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from relayq.consumers.envelope import Envelope
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeState, message_record
from relayq.streams.settings import Settings

__all__ = ("THROTTLED_EVENT", "AttemptRecords")

THROTTLED_EVENT = "throttled"
"""The state an outcome event of a throttled attempt carries (its record says retrying)."""


class AttemptRecords:
    def __init__(self, client: Redis, keys: Keys, settings: Settings, worker: str) -> None:
        self._client = client
        self._keys = keys
        self._worker = worker
        self._records = settings.outcome_records
        self._events = settings.events_keep

    async def failed(self, envelope: Envelope, next_ms: int, error: str, kind: str) -> None:
        """A failed attempt that will be retried at ``next_ms`` (Unix ms); raises what
        Redis raised."""
        partition, entry_id = envelope.state.partition, envelope.entry_id
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(
                self._keys.attempts(partition), entry_id, f"{envelope.failed_attempts}:{next_ms}"
            )
            pipe.hincrby(self._keys.stalls(partition), entry_id, -1)
            self._outcome(pipe, envelope, OutcomeState.RETRYING, next_ms, error, kind)
            await pipe.execute()

    async def throttled(self, envelope: Envelope, wait: float, reason: str) -> None:
        """An attempt the provider throttled (no attempt used): the next one waits ``wait``
        seconds at least. Raises what Redis raised."""
        next_ms = time.time_ns() // 1_000_000 + round(wait * 1000)
        partition = envelope.state.partition
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hincrby(self._keys.stalls(partition), envelope.entry_id, -1)
            self._outcome(pipe, envelope, THROTTLED_EVENT, next_ms, reason, THROTTLED_EVENT)
            await pipe.execute()

    def _outcome(
        self, pipe: Pipeline, envelope: Envelope, event: str, next_ms: int, error: str, kind: str
    ) -> None:
        if not (self._records or self._events):
            return
        partition = envelope.state.partition
        record = message_record(
            envelope.message,
            OutcomeState.RETRYING,
            partition=partition,
            entry_id=envelope.entry_id,
            worker=self._worker,
            attempts=envelope.failed_attempts,
            next_attempt_ms=next_ms,
            error=error[:1000],
            kind=kind,
        )
        message_id = envelope.message.id
        if self._records:
            pipe.hset(self._keys.outcomes(partition), message_id, record)
        if self._events:
            fields = {"state": event, "id": message_id, "record": record}
            pipe.xadd(
                self._keys.events(partition),
                fields,  # type: ignore[arg-type]
                maxlen=self._events,
                approximate=True,
            )
