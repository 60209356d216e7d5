"""Moving entries to the partition's dead-letter stream (``dead_letter_4.lua``)."""

from __future__ import annotations

import enum
import time

from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import Scripts

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
    def __init__(self, scripts: Scripts, keys: Keys, consumer: str) -> None:
        self._scripts = scripts
        self._keys = keys
        self._consumer = consumer

    async def move(
        self, stream: str, entry_id: bytes, *, error: str, kind: str, attempts: int
    ) -> bool:
        """Dead-letter and acknowledge one pending entry; False if it was no longer pending."""
        partition = self._keys.partition_of_key(stream)
        now_ms = time.time_ns() // 1_000_000
        reply = await self._scripts.dead_letter(
            keys=(
                stream,
                self._keys.dead_letter(partition),
                self._keys.attempts(partition),
                self._keys.stalls(partition),
            ),
            args=(GROUP, entry_id, error[:4000], kind, attempts, now_ms, self._consumer),
        )
        return reply is not None
