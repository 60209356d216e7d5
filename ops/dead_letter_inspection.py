"""Reading the dead-letter streams: what failed, why, after how many attempts."""

from __future__ import annotations

from typing import Any

import msgspec
import redis

from relayq.streams.codec import ENTRY_FIELD, PoisonEntryError, decode_entry
from relayq.streams.keys import Keys
from relayq.streams.message import Message

__all__ = ("DeadLetter", "read_dead_letters")

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


def _text(fields: dict[bytes, bytes], name: bytes) -> str:
    return fields.get(name, b"").decode(errors="replace")


def _parse(partition: int, dlq_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
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


def read_dead_letters(client: redis.Redis, keys: Keys, *, limit: int = 10_000) -> list[DeadLetter]:
    """Dead letters of every partition (oldest first within a partition), up to ``limit``."""
    result: list[DeadLetter] = []
    for partition in range(keys.partitions):
        entries: Any = client.xrange(keys.dead_letter(partition), count=limit - len(result))
        result.extend(_parse(partition, dlq_id, fields) for dlq_id, fields in entries)
        if len(result) >= limit:
            break
    return result
