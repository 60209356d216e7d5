"""Stream entries to and from Messages: one msgpack field per entry, one shared encoder.

An entry is ``{"m": <msgpack Message>}`` holding a message ``send()`` would accept (the
checks of ``streams.validation``, but for the producer's payload size limit). Anything else
found in a stream (written by hand, by an old or foreign writer, or corrupted) raises
PoisonEntryError, whose reason names the field, and goes to the DLQ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from relayq.streams.errors import PoisonEntryError, ValidationError
from relayq.streams.message import Message
from relayq.streams.validation import check_message

__all__ = ("ENTRY_FIELD", "PoisonEntryError", "decode_entry", "encode_message", "readable_message")

ENTRY_FIELD = b"m"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)
# msgspec names where decoding failed by position (the Struct is an array): "at `$[1]`".
_FIELD_POSITION = re.compile(r"`\$\[(\d+)\]")


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
        message = _decoder.decode(blob)
    except msgspec.DecodeError as exc:
        raise PoisonEntryError(f"entry does not decode as a message: {_named(exc)}") from None
    try:
        return check_message(message)
    except ValidationError as exc:
        raise PoisonEntryError(f"entry is not a valid message: {exc}") from None


def readable_message(fields: Mapping[bytes, bytes]) -> Message | None:
    """``decode_entry``'s Message, or None for a poison entry (readers that skip them)."""
    try:
        return decode_entry(fields)
    except PoisonEntryError:
        return None


def _named(error: msgspec.DecodeError) -> str:
    """msgspec's error, led by the name of the Message field its position points into."""
    text = str(error)
    position = _FIELD_POSITION.search(text)
    fields = Message.__struct_fields__
    if position is None or int(position[1]) >= len(fields):
        return text
    return f"invalid {fields[int(position[1])]}: {text}"
