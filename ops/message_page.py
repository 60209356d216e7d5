"""One page of messages by state (``GET /v1/messages``, ``relayq message list``)."""

from __future__ import annotations

import msgspec

from relayq.streams.errors import ValidationError
from relayq.streams.outcome import OutcomeRecord

__all__ = ("MAX_PAGE", "ListedMessage", "MessagePage", "check_page_size", "filtered_page")

MAX_PAGE = 1000
"""The most items one page of a listing holds (messages, dead letters)."""


def check_page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be 1 to {MAX_PAGE}, got {limit}")
    return limit


class ListedMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    message_id: str
    state: str
    at_ms: int
    """When it reached the state (due time for delayed)."""
    partition: int
    tenant: str | None = None
    conversation: str | None = None
    priority: str | None = None
    record: OutcomeRecord | None = None
    worker: str | None = None


class MessagePage(msgspec.Struct, kw_only=True):
    items: list[ListedMessage]
    next: str | None


def filtered_page(items: list[ListedMessage], limit: int, looked_past: str | None) -> MessagePage:
    """A page of ``items`` (the candidates a filter kept, in order): when it is full, the
    next one starts after its last item; otherwise after the last candidate looked at
    (``looked_past``: its cursor when more lie beyond it, else None: no next page)."""
    kept = items[:limit]
    if len(kept) == limit:
        return MessagePage(items=kept, next=f"{kept[-1].at_ms}:{kept[-1].message_id}")
    return MessagePage(items=kept, next=looked_past)
