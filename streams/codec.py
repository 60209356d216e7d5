"""Stream entries to and from Messages: one msgpack field per entry, one shared encoder.

An entry is ``{"m": <msgpack Message>}``. Anything else found in a stream (written by hand,
by an old or foreign writer, or corrupted) raises PoisonEntryError and goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from streams.message import Message

__all__ = ("ENTRY_FIELD", "PoisonEntryError", "decode_entry", "encode_message")

ENTRY_FIELD = b"m"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


class PoisonEntryError(ValueError):
    """A stream entry that is not a relayq message."""


def encode_message(message: Message) -> bytes:
    """The msgpack bytes stored under ``ENTRY_FIELD``."""
    return _encoder.encode(message)


def decode_entry(fields: Mapping[bytes, bytes]) -> Message:
    """The Message in a raw stream entry, or PoisonEntryError saying what is wrong."""
    blob = fields.get(ENTRY_FIELD)
    if blob is None:
        names = ", ".join(repr(k) for k in list(fields)[:5])
        raise PoisonEntryError(f"entry has no {ENTRY_FIELD!r} field (fields: {names})")
    if len(fields) != 1:
        raise PoisonEntryError(f"entry has {len(fields)} fields; a relayq entry has exactly one")
    try:
        return _decoder.decode(blob)
    except msgspec.DecodeError as exc:
        raise PoisonEntryError(f"entry does not decode as a message: {exc}") from None
