"""Delivery receipts: the providers' status callbacks, read into one ``Receipt`` shape.

A provider tells, after it accepted a message, how far it got: sent (handed on), delivered
(on the recipient's device), read, or failed. Callbacks arrive out of order and more than
once, so a receipt is kept only when it goes further than the one kept (``rank``):
sent < delivered < read < failed (final: nothing moves it again).

- WhatsApp Cloud API: the ``messages`` webhook's ``entry[].changes[].value.statuses[]``
  (developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/
  messages/status): ``id`` (the wamid), ``status`` (sent, delivered, read, failed; played
  for a voice message, kept as read), ``timestamp`` (Unix seconds),
  ``biz_opaque_callback_data`` (relayq's message id, set by the adapter) and, when failed,
  ``errors[]`` (``code``, ``title``, ``message``).
- Twilio: a form POST with ``MessageSid``, ``MessageStatus`` and ``ErrorCode``
  (twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks);
  relayq's message id is the ``relayq_id`` query parameter of the ``StatusCallback`` URL.
  queued, accepted, scheduled and sending are still inside Twilio (no receipt);
  undelivered and canceled count as failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import msgspec

from relayq.streams.errors import ValidationError
from relayq.streams.message_id import crockford_pattern

__all__ = (
    "RANKED_STATUSES",
    "TWILIO_STATUSES",
    "WHATSAPP_STATUSES",
    "Receipt",
    "ReceiptBatch",
    "rank",
    "twilio_receipts",
    "whatsapp_receipts",
)

RANKED_STATUSES = ("sent", "delivered", "read", "failed")
"""Receipt statuses from least to furthest; a receipt replaces only a lower one."""

WHATSAPP_STATUSES: Mapping[str, str] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "played": "read",  # a voice message played: displayed, and more
    "failed": "failed",
}
TWILIO_STATUSES: Mapping[str, str] = {
    "sent": "sent",  # handed to the carrier (or to WhatsApp)
    "delivered": "delivered",
    "read": "read",  # WhatsApp through Twilio
    "undelivered": "failed",  # the carrier could not deliver it
    "failed": "failed",  # never left Twilio
    "canceled": "failed",  # a scheduled message canceled before it was sent
}
"""Twilio's other statuses (queued, accepted, scheduled, sending: still inside Twilio;
receiving, received: inbound) are not receipts."""

_MESSAGE_ID = crockford_pattern(26)


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    provider_message_id: str
    status: str
    """One of ``RANKED_STATUSES``."""
    at_ms: int
    """When the provider saw that status (Unix ms): its timestamp, else when it arrived."""
    error: str | None = None
    """For failed: the provider's code and title, e.g. ``whatsapp 131026: Message
    undeliverable``."""


class ReceiptBatch(msgspec.Struct, kw_only=True):
    receipts: list[Receipt]
    ignored: int
    """Statuses that are no receipt of a relayq message: no relayq id, or a status that is
    not a receipt (e.g. Twilio's queued)."""


def rank(status: str) -> int:
    """1 for sent up to 4 for failed."""
    return RANKED_STATUSES.index(status) + 1


def _relayq_id(value: str | None) -> str | None:
    return value if value is not None and _MESSAGE_ID.fullmatch(value) else None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- WhatsApp --------------------------------------------------------------------------


class _WhatsAppError(msgspec.Struct):
    code: int | None = None
    title: str = ""
    message: str = ""


class _WhatsAppStatus(msgspec.Struct):
    id: str
    status: str
    timestamp: str | int
    recipient_id: str = ""
    biz_opaque_callback_data: str | None = None
    errors: list[_WhatsAppError] = []


class _WhatsAppValue(msgspec.Struct):
    statuses: list[_WhatsAppStatus] = []


class _WhatsAppChange(msgspec.Struct):
    value: _WhatsAppValue
    field: str = ""


class _WhatsAppEntry(msgspec.Struct):
    changes: list[_WhatsAppChange] = []


class _WhatsAppWebhook(msgspec.Struct):
    entry: list[_WhatsAppEntry]
    object: str = ""


_whatsapp_decoder = msgspec.json.Decoder(_WhatsAppWebhook)


def whatsapp_receipts(body: bytes) -> ReceiptBatch:
    """The receipts of one ``messages`` webhook body (other changes, e.g. incoming messages,
    hold none); a ValidationError naming ``body`` if it is not such a payload."""
    try:
        webhook = _whatsapp_decoder.decode(body)
        statuses = [s for e in webhook.entry for c in e.changes for s in c.value.statuses]
        found = [_whatsapp_receipt(status) for status in statuses]
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ValidationError("body", f"not a WhatsApp webhook payload: {exc}") from None
    receipts = [receipt for receipt in found if receipt is not None]
    return ReceiptBatch(receipts=receipts, ignored=len(found) - len(receipts))


def _whatsapp_receipt(status: _WhatsAppStatus) -> Receipt | None:
    message_id = _relayq_id(status.biz_opaque_callback_data)
    ours = WHATSAPP_STATUSES.get(status.status)
    if message_id is None or ours is None:
        return None
    return Receipt(
        message_id=message_id,
        provider_message_id=status.id,
        status=ours,
        at_ms=int(status.timestamp) * 1000,
        error=_whatsapp_error(status.errors) if ours == "failed" else None,
    )


def _whatsapp_error(errors: list[_WhatsAppError]) -> str:
    if not errors:
        return "whatsapp: failed (no error given)"
    first = errors[0]
    return f"whatsapp {first.code}: {first.title or first.message}"


# -- Twilio ----------------------------------------------------------------------------


def twilio_receipts(params: Mapping[str, str], relayq_id: str | None) -> ReceiptBatch:
    """The receipt of one status callback (its form ``params``; ``relayq_id`` from the
    query); a ValidationError naming ``MessageSid`` or ``MessageStatus`` if one is
    missing."""
    for name in ("MessageSid", "MessageStatus"):
        if not params.get(name):
            raise ValidationError(name, f"not a Twilio status callback: no {name}")
    message_id = _relayq_id(relayq_id)
    ours = TWILIO_STATUSES.get(params["MessageStatus"])
    if message_id is None or ours is None:
        return ReceiptBatch(receipts=[], ignored=1)
    error = None
    if ours == "failed":
        error = f"twilio {params.get('ErrorCode') or '-'}: {params['MessageStatus']}"
    receipt = Receipt(
        message_id=message_id,
        provider_message_id=params["MessageSid"],
        status=ours,
        at_ms=_now_ms(),
        error=error,
    )
    return ReceiptBatch(receipts=[receipt], ignored=0)
