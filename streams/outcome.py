"""Outcome records: the last known state of each message, and the durable counters.

Workers write them in the round trip that acknowledges or dead-letters an entry
(``acknowledge_5.lua``, ``dead_letter_7.lua``), so no message pays a round trip of its own.
A record is JSON (readable with ``redis-cli HGET``) in the partition's ``{ns:P}:outcomes``
hash under the message id; finished records are kept for a bounded time and count
(``Settings.keep_delivered`` / ``keep_dead_lettered``). Counters are fields of
``{ns:P}:counts``: ``delivered:<level>:<tenant>`` and ``dead_lettered:<level>:<tenant>``.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = (
    "OutcomeRecord",
    "OutcomeState",
    "counter_field",
    "decode_record",
    "encode_record",
    "parse_counter_field",
)


class OutcomeState(enum.StrEnum):
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


class OutcomeRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What relayq last knew of one message."""

    state: str
    at_ms: int
    """When it reached that state (Unix ms)."""
    tenant: str
    conversation: str
    priority: str
    partition: int
    created_ms: int
    entry_id: str | None = None
    worker: str | None = None
    attempts: int = 0
    """Attempts made, the one that ended it included."""
    provider_message_id: str | None = None
    error: str | None = None
    kind: str | None = None
    dlq_id: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(OutcomeRecord)


def encode_record(record: OutcomeRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(blob: bytes) -> OutcomeRecord:
    return _decoder.decode(blob)


def counter_field(state: OutcomeState, priority: str, tenant: str) -> str:
    """The ``{ns:P}:counts`` field of one state, level and tenant (tenant last: it is the
    one part that may hold a colon)."""
    return f"{state.value}:{priority}:{tenant}"


def parse_counter_field(field: str) -> tuple[str, str, str]:
    """(state, level, tenant) of a counter field."""
    state, priority, tenant = field.split(":", 2)
    return state, priority, tenant
