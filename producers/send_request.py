"""What a caller asks to send, how it becomes a validated Message, and what a send returns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from typing import Any

from relayq.streams.errors import ValidationError
from relayq.streams.message import Message, Priority
from relayq.streams.message_id import new_message_id
from relayq.streams.settings import Settings
from relayq.streams.telemetry import inject_context
from relayq.streams.validation import (
    check_message_fields,
    check_seconds,
    encode_payload,
    metadata_dict,
)

__all__ = (
    "BatchResults",
    "PreparedMessage",
    "SendRequest",
    "SendResult",
    "prepare",
    "request_from",
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """One message to send. ``delay`` (seconds) and ``not_before`` (aware datetime or Unix
    seconds) hold it back until then; ``dedup_key`` suppresses repeats within the window;
    ``sender`` is the provider-side sending identity that per-sender limits apply to;
    ``max_attempts`` (1 to 1000) replaces the workers' ``max_attempts`` for this message;
    ``channel`` (``whatsapp``, ``sms``, ``email``, ...) picks the workers' adapter for it.
    ``priority`` is a level's name or number (``RELAYQ_PRIORITIES``); None is the
    namespace's default level (``normal``, or the lowest level if there is no ``normal``)."""

    tenant: str
    conversation: str
    recipient: str
    payload: Any
    priority: Priority | str | int | None = None
    dedup_key: str | None = None
    delay: float | None = None
    not_before: dt.datetime | float | None = None
    metadata: Mapping[str, str] | None = None
    sender: str | None = None
    max_attempts: int | None = None
    channel: str | None = None


_FIELDS = tuple(field.name for field in dataclasses.fields(SendRequest))
_REQUIRED = tuple(
    field.name
    for field in dataclasses.fields(SendRequest)
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
)


def request_from(fields: Mapping[str, Any]) -> SendRequest:
    """The SendRequest of a call's keyword arguments; ValidationError names an unknown
    or missing field (where the dataclass would raise a bare TypeError)."""
    unknown = sorted(set(fields).difference(_FIELDS))
    if unknown:
        known = ", ".join(_FIELDS)
        raise ValidationError(unknown[0], f"is not a field of a message (those are: {known})")
    missing = [name for name in _REQUIRED if name not in fields]
    if missing:
        raise ValidationError(missing[0], "is required")
    return SendRequest(**fields)


@dataclasses.dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one item of ``send_many``: a message id, or the error that refused it."""

    message_id: str | None
    error: Exception | None = None
    duplicate: bool = False
    """True when a dedup key matched an earlier message (``message_id`` is that message's)."""
    direct: bool = False
    """True when Redis was unreachable and the message was delivered directly by the
    producer's fallback deliverer: no queue, so no ordering, limits, retries or DLQ."""
    provider_message_id: str | None = None
    """The provider's id for a direct delivery."""

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchResults(list[SendResult]):
    """``send_many``'s results, one per request in order, and the id of the batch they
    form (``relayq batch show ID``; ``streams.batch``)."""

    def __init__(self, results: Iterable[SendResult], batch_id: str) -> None:
        super().__init__(results)
        self.batch_id = batch_id


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedMessage:
    message: Message
    due_ms: int
    """0 when deliverable now, else the Unix ms at which it becomes due."""


def _due_ms(request: SendRequest, now_ms: int) -> int:
    if request.delay is not None and request.not_before is not None:
        raise ValidationError("delay", "give delay or not_before, not both")
    if request.delay is not None:
        seconds = check_seconds("delay", request.delay)
        return now_ms + round(seconds * 1000) if seconds > 0 else 0
    if request.not_before is None:
        return 0
    when = request.not_before
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            raise ValidationError(
                "not_before", "must be timezone-aware (naive datetimes are ambiguous)"
            )
        epoch = when.timestamp()
    else:
        epoch = check_seconds("not_before", when)
    due = round(epoch * 1000)
    return due if due > now_ms else 0


def _level(priority: object, settings: Settings) -> str:
    levels = settings.priority_levels
    return levels.default if priority is None else levels.resolve(priority)


def prepare(
    request: SendRequest, settings: Settings, *, trace: bool, batch: str | None = None
) -> PreparedMessage:
    """Validate every field and build the Message; ValidationError names the first bad one.

    The identifiers and metadata are checked on the built Message by the same function
    that checks every entry a worker decodes (``streams.validation``).
    """
    if not isinstance(request, SendRequest):
        raise ValidationError("request", f"must be a SendRequest, not {type(request).__name__}")
    now_ms = time.time_ns() // 1_000_000
    due_ms = _due_ms(request, now_ms)
    message = Message(
        id=new_message_id(),
        tenant=request.tenant,
        conversation=request.conversation,
        recipient=request.recipient,
        priority=_level(request.priority, settings),
        payload=encode_payload(request.payload, settings.max_payload_bytes),
        created_ms=now_ms,
        dedup_key=request.dedup_key,
        not_before_ms=due_ms or None,
        metadata=metadata_dict(request.metadata),
        trace=inject_context() if trace else {},
        sender=request.sender,
        max_attempts=request.max_attempts,
        batch=batch,
        channel=request.channel,
    )
    return PreparedMessage(check_message_fields(message), due_ms)
