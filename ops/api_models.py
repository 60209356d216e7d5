"""What the HTTP API takes and gives: msgspec Structs, so Litestar validates requests with
them (naming the field of a bad value) and writes the OpenAPI document from them."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from relayq.producers.send_request import SendRequest

__all__ = (
    "BatchAccepted",
    "ItemResult",
    "MessageIn",
    "Problem",
    "SendAccepted",
    "SendBody",
    "field_of",
    "parse_item",
    "StatsOut",
)

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_SEND_FIELDS = ("tenant", "conversation", "recipient", "payload")


class MessageIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One message to send (the fields of ``Producer.send``)."""

    tenant: _Text
    conversation: _Text
    recipient: _Text
    payload: Any
    """Any JSON document (at most RELAYQ_MAX_PAYLOAD_BYTES encoded)."""
    priority: str | int | None = None
    dedup_key: str | None = None
    delay: float | None = None
    """Seconds to hold the message back."""
    not_before: float | None = None
    """Unix seconds before which it is not sent."""
    metadata: dict[str, str] | None = None
    sender: str | None = None
    max_attempts: int | None = None
    channel: str | None = None
    """How it is delivered (whatsapp, sms, email, webhook...; None: the workers' default)."""

    def request(self) -> SendRequest:
        return SendRequest(**msgspec.structs.asdict(self))


class SendBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Either one message (its fields at the top level) or a batch: ``{"messages": [...]}``
    (up to 10,000 per request; each item is accepted or refused on its own)."""

    messages: (
        Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=10_000)] | None
    ) = None
    """Each item has MessageIn's fields; one that does not is refused alone."""
    tenant: _Text | None = None
    conversation: _Text | None = None
    recipient: _Text | None = None
    payload: Any = msgspec.UNSET
    priority: str | int | None = None
    dedup_key: str | None = None
    delay: float | None = None
    not_before: float | None = None
    metadata: dict[str, str] | None = None
    sender: str | None = None
    max_attempts: int | None = None
    channel: str | None = None
    """How it is delivered (whatsapp, sms, email, webhook...; None: the workers' default)."""

    def single(self) -> MessageIn | str:
        """The one message, or the name of the first required field it lacks."""
        fields = msgspec.structs.asdict(self)
        fields.pop("messages")
        for name in _SEND_FIELDS:
            if fields[name] is None or fields[name] is msgspec.UNSET:
                return name
        return MessageIn(**fields)


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_AT_PATH = re.compile(r"`\$\.([A-Za-z_][\w.\[\]]*)`")


def field_of(problem: str) -> str | None:
    """The field a msgspec validation message is about: ``... - at `$.tenant``` or
    ``Object contains unknown field `bogus` - at `$.messages[1]```."""
    unknown = _UNKNOWN_FIELD.search(problem)
    at = _AT_PATH.search(problem)
    if unknown:
        return f"{at.group(1)}.{unknown.group(1)}" if at else unknown.group(1)
    return at.group(1) if at else None


def parse_item(raw: dict[str, Any]) -> MessageIn | tuple[str, str | None]:
    """One batch item as a MessageIn, or (the problem, the field it names)."""
    try:
        return msgspec.convert(raw, MessageIn)
    except msgspec.ValidationError as exc:
        return str(exc), field_of(str(exc))


class SendAccepted(msgspec.Struct, kw_only=True):
    id: str
    """The message id (with a dedup key that matched an earlier message: that one's)."""


class ItemResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One item of a batch: its id, or the error that refused it (``field`` names it)."""

    index: int
    id: str | None = None
    duplicate: bool = False
    error: str | None = None
    field: str | None = None


class BatchAccepted(msgspec.Struct, kw_only=True):
    batch_id: str
    accepted: int
    refused: int
    results: list[ItemResult]


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Every error: what went wrong, and the field or parameter it is about."""

    error: str
    field: str | None = None
    status: int = 0


class StatsOut(msgspec.Struct, kw_only=True):
    """Counts of the namespace (or of the key's tenant): totals, per priority level, per
    tenant (``relayq status``'s rows), and seed 001's queue-metrics shape."""

    namespace: str
    at_ms: int
    waiting: int
    active: int
    """In flight (BullMQ's ``active``)."""
    retrying: int
    delayed: int
    completed: int
    """Delivered (durable counter)."""
    failed: int
    """Dead-lettered (durable counter)."""
    delivered_per_second: float
    tenantConcurrency: dict[str, int]  # noqa: N815 - seed 001's name, kept for its users
    """In flight per tenant."""
    maxConcurrencyPerTenant: int  # noqa: N815
    priorities: dict[str, dict[str, int]]
    rows: list[dict[str, Any]]
