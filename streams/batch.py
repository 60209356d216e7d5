"""Batches: every ``send_many`` call is one, so its progress can be followed.

Its messages carry the batch id (``Message.batch``). The producer records the batch in
the hash ``ns:batch:<id>`` (``Keys.batch``) once its messages are enqueued: how many were
requested, accepted (queued now, duplicates excluded), refused and duplicates (added up:
a large send may add to its batch call after call, ``send_many(batch_id=...)``), when it
began and for which tenants (fields ``tenant:<name>``, at most ten named per call).
Workers count each finished message of a batch in its partition's
``{ns:P}:batch:<id>`` hash (``delivered`` / ``dead_lettered``) inside the script that
finishes it (``_outcome.lua``), so progress costs no round trip of its own. Both expire
``BATCH_KEEP_MS`` after they were made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from relayq.streams.errors import ValidationError
from relayq.streams.message_id import crockford_base32, crockford_pattern

__all__ = (
    "BATCH_KEEP_MS",
    "TENANT_FIELD",
    "BatchRecord",
    "check_batch_id",
    "new_batch_id",
    "parse_batch_record",
)

TENANT_FIELD = "tenant:"
_BATCH_ID = crockford_pattern(12)
_COUNTS = ("requested", "accepted", "refused", "duplicates")

BATCH_KEEP_MS = 7 * 24 * 3600 * 1000
"""How long a batch's record and counts are kept: a week."""


def new_batch_id() -> str:
    """12 random Crockford base32 characters (60 bits: short, since every message of the
    batch carries it; a collision within a week's batches is vanishingly unlikely)."""
    return crockford_base32(os.urandom(10))[:12].decode()


def check_batch_id(batch_id: str) -> str:
    """``batch_id`` if it has the form ``new_batch_id`` gives, else a ValidationError."""
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        raise ValidationError(
            "batch_id", f"{str(batch_id)[:40]!r} is not a relayq batch id (12 characters, 0-9 A-Z)"
        )
    return batch_id


def parse_batch_record(batch_id: str, fields: Mapping[bytes, bytes]) -> BatchRecord:
    """The record from the batch hash's fields (``HGETALL``)."""
    text = {k.decode(): v.decode() for k, v in fields.items()}
    tenants = sorted(k.removeprefix(TENANT_FIELD) for k in text if k.startswith(TENANT_FIELD))
    counts = {name: int(text.get(name, 0)) for name in _COUNTS}
    return BatchRecord(
        batch_id=batch_id, created_ms=int(text.get("created_ms", 0)), tenants=tenants, **counts
    )


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the producer knew of a batch once it was enqueued."""

    batch_id: str
    created_ms: int
    requested: int
    accepted: int
    """Queued by this batch (what its progress counts towards)."""
    refused: int = 0
    """Invalid items, or items Redis did not take."""
    duplicates: int = 0
    """Items a dedup key matched to an earlier message (not counted in ``accepted``)."""
    tenants: list[str] = []
    """The batch's tenants (at most ten named)."""
