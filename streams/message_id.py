"""Time-ordered unique message ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32).

Ids made in one process are strictly increasing, also within one millisecond.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ("new_message_id", "message_id_time_ms")

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_message_id() -> str:
    """Return a 26-character id that sorts by creation time."""
    global _last_ms, _last_random
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << _RANDOM_BITS) - 1)
        else:
            _last_ms = now_ms
            _last_random = int.from_bytes(os.urandom(10), "big")
        value = (now_ms << _RANDOM_BITS) | _last_random
    return _encode(value, 26)


def message_id_time_ms(message_id: str) -> int:
    """The creation time (Unix ms) encoded in a message id."""
    value = 0
    for char in message_id[:10]:
        value = (value << 5) | _DECODE[char]
    return value
