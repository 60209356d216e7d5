"""Checks on every user-supplied field, each raising ValidationError naming the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec

from streams.errors import ValidationError
from streams.message import Priority

__all__ = (
    "MAX_CONVERSATION_LENGTH",
    "MAX_DEDUP_KEY_LENGTH",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_VALUE_LENGTH",
    "MAX_RECIPIENT_LENGTH",
    "MAX_SENDER_LENGTH",
    "MAX_TENANT_LENGTH",
    "check_identifier",
    "check_metadata",
    "check_priority",
    "check_seconds",
    "encode_payload",
)

MAX_TENANT_LENGTH = 128
MAX_SENDER_LENGTH = 128
MAX_CONVERSATION_LENGTH = 256
MAX_RECIPIENT_LENGTH = 256
MAX_DEDUP_KEY_LENGTH = 256
MAX_METADATA_ENTRIES = 32
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 1024

_json_encoder = msgspec.json.Encoder()


def _control_character(value: str) -> str | None:
    for char in value:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"U+{code:04X}"
    return None


def check_identifier(field: str, value: object, max_length: int) -> str:
    """A non-empty string of at most ``max_length`` characters without control characters."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"is {len(value)} characters long; the limit is {max_length}")
    bad = _control_character(value)
    if bad is not None:
        raise ValidationError(field, f"contains the control character {bad}")
    return value


def check_priority(value: object) -> Priority:
    """One of ``high``, ``normal``, ``low`` (a Priority or its string)."""
    try:
        return Priority(value)  # type: ignore[arg-type]  # ValueError covers non-strings
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        raise ValidationError("priority", f"{value!r} is not one of {allowed}") from None


def check_metadata(value: Mapping[str, str] | None) -> dict[str, str]:
    """String keys and values, bounded in count and length."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("metadata", f"must be a mapping, not {type(value).__name__}")
    if len(value) > MAX_METADATA_ENTRIES:
        raise ValidationError(
            "metadata", f"has {len(value)} entries; the limit is {MAX_METADATA_ENTRIES}"
        )
    result: dict[str, str] = {}
    for key, item in value.items():
        check_identifier("metadata key", key, MAX_METADATA_KEY_LENGTH)
        if not isinstance(item, str):
            raise ValidationError(f"metadata[{key!r}]", "must be a string")
        if len(item) > MAX_METADATA_VALUE_LENGTH:
            raise ValidationError(
                f"metadata[{key!r}]", f"is longer than {MAX_METADATA_VALUE_LENGTH} characters"
            )
        result[key] = item
    return result


def encode_payload(payload: Any, max_bytes: int) -> bytes:
    """The payload as JSON bytes, at most ``max_bytes`` long.

    A ``bytes`` payload is taken as an already-encoded JSON document and checked to parse.
    """
    if isinstance(payload, bytes | bytearray | memoryview):
        encoded = bytes(payload)
        try:
            msgspec.json.decode(encoded)
        except msgspec.DecodeError as exc:
            raise ValidationError("payload", f"bytes are not a JSON document ({exc})") from None
    else:
        try:
            encoded = _json_encoder.encode(payload)
        except (TypeError, msgspec.EncodeError) as exc:
            raise ValidationError("payload", f"cannot be encoded as JSON ({exc})") from None
    if len(encoded) > max_bytes:
        raise ValidationError(
            "payload", f"is {len(encoded)} bytes as JSON; the limit is {max_bytes} bytes"
        )
    return encoded


def check_seconds(field: str, value: object, *, allow_zero: bool = True) -> float:
    """A finite, non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValidationError(field, f"must be a finite number of seconds >= 0, got {value!r}")
    return seconds
