"""Time-ordered unique message ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32).

Ids made in one process are strictly increasing, also within one millisecond.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time

__all__ = ("crockford_base32", "crockford_pattern", "message_id_time_ms", "new_message_id")

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_RANDOM_BITS = 80


class _Generator:
    """Monotonic ULIDs: within one millisecond the random part counts up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def next_value(self) -> int:
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            if now_ms <= self._last_ms:
                now_ms = self._last_ms
                self._last_random = (self._last_random + 1) & ((1 << _RANDOM_BITS) - 1)
            else:
                self._last_ms = now_ms
                self._last_random = int.from_bytes(os.urandom(10), "big")
            return (now_ms << _RANDOM_BITS) | self._last_random


_generator = _Generator()


_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = bytes.maketrans(_RFC4648, _ALPHABET.encode())


def crockford_base32(raw: bytes) -> bytes:
    """``raw`` in Crockford base32 (RFC 4648 through the C encoder, then translated)."""
    return base64.b32encode(raw).translate(_TO_CROCKFORD)


def crockford_pattern(length: int) -> re.Pattern[str]:
    """Exactly ``length`` Crockford base32 characters (what ids made here look like)."""
    return re.compile(f"[{re.escape(_ALPHABET)}]{{{length}}}")


def _encode(value: int, length: int) -> str:
    """``value`` in ``length`` Crockford base32 characters (most significant first).

    Through the C base32 encoder: ``value`` padded to 5 * 32 bits encodes to 32 characters
    whose last ``length`` are its own (the leading ones stand for the zero padding).
    """
    return crockford_base32(value.to_bytes(20, "big"))[32 - length :].decode()


def new_message_id() -> str:
    """Return a 26-character id that sorts by creation time."""
    return _encode(_generator.next_value(), 26)


def message_id_time_ms(message_id: str) -> int:
    """The creation time (Unix ms) encoded in a message id."""
    value = 0
    for char in message_id[:10]:
        value = (value << 5) | _DECODE[char]
    return value
