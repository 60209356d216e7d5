"""One dead letter as the dead-letter stream holds it (``dead_letter_11.lua`` writes it),
and its reference ``<partition>-<entry id>`` (``3-1733220000000-0``)."""

from __future__ import annotations

import msgspec

from relayq.streams.codec import ENTRY_FIELD, PoisonEntryError, decode_entry
from relayq.streams.message import Message

__all__ = ("DeadLetter", "format_ref", "parse_dead_letter")

_PREFIX = b"entry:"


class DeadLetter(msgspec.Struct, frozen=True):
    dlq_id: str
    partition: int
    kind: str
    error: str
    attempts: int
    origin_stream: str
    origin_id: str
    failed_ms: int
    message: Message | None
    """The original message, or None for a poison entry (see ``raw_fields``)."""
    raw_fields: dict[str, str]

    @property
    def ref(self) -> str:
        """``<partition>-<entry id>``: names the dead letter, and is a page cursor."""
        return format_ref(self.partition, self.dlq_id)


def format_ref(partition: int, dlq_id: str) -> str:
    return f"{partition}-{dlq_id}"


def _text(fields: dict[bytes, bytes], name: bytes) -> str:
    return fields.get(name, b"").decode(errors="replace")


def parse_dead_letter(partition: int, dlq_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    """A dead-letter stream entry, as ``dead_letter_11.lua`` wrote it."""
    original = {k[len(_PREFIX) :]: v for k, v in fields.items() if k.startswith(_PREFIX)}
    message: Message | None
    try:
        message = decode_entry(original) if ENTRY_FIELD in original else None
    except PoisonEntryError:
        message = None
    raw = (
        {}
        if message
        else {
            k.decode(errors="replace"): v.decode(errors="replace")[:200]
            for k, v in original.items()
        }
    )
    return DeadLetter(
        dlq_id=dlq_id.decode(),
        partition=partition,
        kind=_text(fields, b"kind"),
        error=_text(fields, b"error"),
        attempts=int(fields.get(b"attempts", b"0") or 0),
        origin_stream=_text(fields, b"origin_stream"),
        origin_id=_text(fields, b"origin_id"),
        failed_ms=int(fields.get(b"failed_ms", b"0") or 0),
        message=message,
        raw_fields=raw,
    )
