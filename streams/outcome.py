"""Outcome records: the last known state of each message, and the durable counters.

Workers write them in the round trip that acknowledges or dead-letters an entry
(``acknowledge_8.lua``, ``dead_letter_11.lua``), so no message pays a round trip of its own.
A record is JSON (readable with ``redis-cli HGET``) in the partition's ``{ns:P}:outcomes``
hash under the message id, with the attempts before its state that did not finish it
(``history``: the last ``HISTORY_KEEP`` notes); finished records are kept for a bounded
time and count (``Settings.keep_delivered`` / ``keep_dead_lettered``). Counters are fields of
``{ns:P}:counts``: ``delivered:<level>:<tenant>`` and ``dead_lettered:<level>:<tenant>``.
"""

from __future__ import annotations

import enum
import time
from typing import Any

import msgspec

from relayq.streams.message import Message

__all__ = (
    "FINISHED_STATES",
    "HISTORY_KEEP",
    "NOTE_ERROR_CHARS",
    "THROTTLED",
    "AttemptNote",
    "OutcomeRecord",
    "OutcomeState",
    "accepted_record",
    "attempt_note",
    "counter_field",
    "decode_record",
    "delivered_record",
    "encode_record",
    "message_record",
    "parse_counter_field",
)


class OutcomeState(enum.StrEnum):
    ACCEPTED = "accepted"
    """Queued, not yet sent (waiting for its turn, or a retry of it was handed back)."""
    DELAYED = "delayed"
    """Queued with a due time (``due_ms``) still ahead."""
    IN_FLIGHT = "in_flight"
    """Read by a worker (``worker``) since ``at_ms`` and not finished: held in its memory
    or being sent. Not written per attempt (that would cost every message a write):
    ``message show`` finds it in the group's pending entries."""
    RETRYING = "retrying"
    """An attempt failed; the next one is due at ``next_attempt_ms``."""
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


FINISHED_STATES = (OutcomeState.DELIVERED, OutcomeState.DEAD_LETTERED)

HISTORY_KEEP = 10
"""Most attempt notes a record keeps (the last ones)."""
NOTE_ERROR_CHARS = 300
"""An attempt note's error is cut to this many characters (the record's own is longer)."""
THROTTLED = "throttled"
"""The kind of a throttle's attempt note (and the state of its outcome event)."""


class AttemptNote(msgspec.Struct, frozen=True, omit_defaults=True):
    """One attempt that did not finish its message: a failure that was retried, or a
    throttle (kind ``throttled``), which used no attempt."""

    attempt: int
    """Its number, 1 for the first. A throttle's is the number of the attempt it held
    back, which is made again under the same number."""
    at_ms: int
    """When it failed (Unix ms)."""
    kind: str
    """The failure's kind (``http_500``, ``timeout``, ``exception``, ... or ``throttled``)."""
    error: str
    """What failed, cut to ``NOTE_ERROR_CHARS``."""
    worker: str | None = None
    """The worker that made it."""

    @property
    def counted(self) -> bool:
        """Whether it used an attempt (a throttle did not)."""
        return self.kind != THROTTLED


class OutcomeRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """What relayq last knew of one message. (Positional construction, in field order, is
    the fast one: ``delivered_record`` builds one per delivered message.)"""

    state: str
    tenant: str
    conversation: str
    priority: str
    at_ms: int = 0
    """When it reached that state (Unix ms; 0 in an accepted or delayed record: the message
    id's time)."""
    partition: int = -1
    """-1 in an accepted or delayed record: the hash it is in says (kept small: one such
    record per queued message)."""
    created_ms: int = 0
    entry_id: str | None = None
    worker: str | None = None
    attempts: int = 0
    """Attempts made, the one that ended it included."""
    provider_message_id: str | None = None
    error: str | None = None
    kind: str | None = None
    dlq_id: str | None = None
    due_ms: int | None = None
    """A delayed message's due time."""
    next_attempt_ms: int | None = None
    """A retrying message's next attempt."""
    receipt: str | None = None
    """The provider's furthest delivery receipt (sent, delivered, read, failed), from its
    status callbacks (``relayq api``'s ``/v1/receipts/...``)."""
    receipt_ms: int | None = None
    """When that receipt arrived (Unix ms)."""
    history: list[AttemptNote] | None = None
    """The attempts before this state that did not finish the message, oldest first: the
    last ``HISTORY_KEEP`` of them, failures and throttles (a retrying record's own failure
    is its last note). Left out while there is none. The scripts carry it from record to
    record as one JSON array (``_record_text.lua``), never decoding it."""
    recipient: str | None = None
    """Who it was sent to: in finished (and retrying) records only, not in the accepted
    record (one per queued message, kept small). Indexed with the conversation for
    ``ops.message_search`` (``Keys.outcome_lookup``)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(OutcomeRecord)


def encode_record(record: OutcomeRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(blob: bytes) -> OutcomeRecord:
    return _decoder.decode(blob)


def attempt_note(
    attempt: int, at_ms: int, kind: str, error: str, worker: str | None = None
) -> bytes:
    """The encoded note of one attempt (a JSON object), its error cut short."""
    return _encoder.encode(AttemptNote(attempt, at_ms, kind, error[:NOTE_ERROR_CHARS], worker))


def counter_field(state: OutcomeState, priority: str, tenant: str) -> str:
    """The ``{ns:P}:counts`` field of one state, level and tenant (tenant last: it is the
    one part that may hold a colon)."""
    return f"{state.value}:{priority}:{tenant}"


def parse_counter_field(field: str) -> tuple[str, str, str]:
    """(state, level, tenant) of a counter field."""
    state, priority, tenant = field.split(":", 2)
    return state, priority, tenant


def accepted_record(
    message: Message, *, due_ms: int = 0, at_ms: int = 0, partition: int = -1
) -> bytes:
    """The record a queued message starts with (delayed when ``due_ms``): small, one per
    queued message. A send leaves out ``at_ms`` and ``partition`` (its time is in its id,
    its partition is the hash it is in); a replay gives them (when it re-entered)."""
    return encode_record(
        OutcomeRecord(
            state=OutcomeState.DELAYED if due_ms else OutcomeState.ACCEPTED,
            tenant=message.tenant,
            conversation=message.conversation,
            priority=message.priority,
            due_ms=due_ms or None,
            at_ms=at_ms,
            partition=partition,
            created_ms=message.created_ms if at_ms else 0,
        )
    )


_DELIVERED = OutcomeState.DELIVERED.value


def delivered_record(
    message: Message,
    partition: int,
    entry_id: bytes,
    worker: str,
    attempts: int,
    provider_message_id: str | None,
    at_ms: int,
) -> bytes:
    """``message_record`` of a delivered message, built positionally: on every message's
    path, so about 8x cheaper than the keyword form (see bench/RESULTS.md, outcomes)."""
    return _encoder.encode(
        OutcomeRecord(
            _DELIVERED,
            message.tenant,
            message.conversation,
            message.priority,
            at_ms,
            partition,
            message.created_ms,
            entry_id.decode(),
            worker,
            attempts,
            provider_message_id,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,  # history
            message.recipient,
        )
    )


def message_record(
    message: Message,
    state: OutcomeState,
    *,
    partition: int,
    entry_id: bytes,
    worker: str,
    attempts: int,
    at_ms: int | None = None,
    **details: Any,
) -> bytes:
    """The encoded record of ``message`` as a worker sees it (entry read, in ``partition``):
    ``details`` are the state's own fields (provider_message_id, error, kind, ...)."""
    return encode_record(
        OutcomeRecord(
            state=state,
            at_ms=at_ms if at_ms is not None else time.time_ns() // 1_000_000,
            tenant=message.tenant,
            conversation=message.conversation,
            priority=message.priority,
            partition=partition,
            created_ms=message.created_ms,
            entry_id=entry_id.decode(),
            worker=worker,
            attempts=attempts,
            recipient=message.recipient,
            **details,
        )
    )
