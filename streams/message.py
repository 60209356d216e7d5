"""The message as it travels through relayq, and the names of the default priority levels.

Schema evolution (the Struct is encoded as a msgpack array): new fields are appended at
the end with a default; a field's type never changes; no field is removed or reordered.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

__all__ = ("CHANNEL_PATTERN", "Message", "Priority")

CHANNEL_PATTERN = "^[a-z][a-z0-9_-]{0,31}$"
"""A channel name: lowercase letters, digits, ``_`` and ``-``, up to 32, a letter first."""


class Priority(enum.StrEnum):
    """The default priority levels (``RELAYQ_PRIORITIES=high,normal,low``), highest first.

    A namespace may configure other levels (``streams.priority_levels``); ``send`` then
    takes their names (or numbers) as plain strings (or ints)."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


_json_decoder = msgspec.json.Decoder()
# Length bounds are checked again on decode, so a hand-written entry cannot smuggle in
# an empty tenant; the producer's own checks (streams.validation) give the friendlier errors.
_Tenant = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Level = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class Message(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    """One message. Build it with ``producers``; workers hand it to a deliverer."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    """Time-ordered unique id assigned at send (see ``streams.message_id``)."""
    tenant: _Tenant
    conversation: _Name
    recipient: _Name
    priority: _Level
    """The name of its priority level (one of the namespace's ``PriorityLevels``)."""
    payload: bytes
    """The payload as a UTF-8 JSON document, never decoded on the routing path."""
    created_ms: int
    """Unix time in milliseconds when ``send()`` accepted the message."""
    dedup_key: str | None = None
    not_before_ms: int | None = None
    metadata: dict[str, str] = {}
    trace: dict[str, str] = {}
    """W3C trace context (``traceparent``/``tracestate``) injected by the producer."""
    sender: _Tenant | None = None
    """The provider-side sending identity (a WhatsApp phone number id, an SMS from-number):
    optional; when set, per-sender rate limits and provider pauses apply to it."""
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    """Delivery attempts before the dead-letter stream, for this message alone; None means
    the worker's ``max_attempts`` setting."""
    batch: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    """The ``send_many`` call it came in (``streams.batch``): workers count its outcome
    there."""
    channel: Annotated[str, msgspec.Meta(pattern=CHANNEL_PATTERN)] | None = None
    """How it is delivered (``whatsapp``, ``sms``, ``email``, ``webhook``, ...): the
    worker's adapter for that channel sends it (``consumers.channel_router``); None: the
    worker's default channel."""

    def payload_json(self) -> Any:
        """The payload decoded from JSON."""
        return _json_decoder.decode(self.payload)
