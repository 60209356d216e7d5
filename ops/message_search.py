"""Finished messages by conversation or by recipient, newest first, a page at a time
(``GET /v1/messages?conversation=...`` / ``?recipient=...``, ``relayq message list
--conversation``, the dashboard's search form), never loading a whole set.

The finishing scripts keep, per partition, a lookup index of the kept finished records
(``Keys.outcome_lookup``: a sorted set paged BYLEX, every score 0) with two members per
record, ``c NUL <conversation> NUL <at_ms, 13 digits> NUL <id>`` and the same with ``r``
and the recipient (``streams/lua/_retain.lua``); records and members are written and
trimmed together. A page is one pipelined ZREVRANGEBYLEX per partition bounded by the page
size (one partition when tenant and conversation are both given: ``Keys.partition_of``),
merged newest first, then one HMGET-like pipelined read of the records; a tenant filter
applies on the records (like ``ops.message_listing``, a page may then hold fewer than
``limit`` items while ``next`` still advances).

What it finds: delivered and dead-lettered messages whose records are kept
(``Settings.keep_delivered`` / ``keep_dead_lettered``). Messages still waiting, delayed or
in flight are not found by conversation: their only home is the tenant's waiting list or
the group's pending entries, which would have to be scanned. A member whose record is gone
or no longer matches it (trimmed, replayed) is skipped and removed.

The cursor (``after``) is the last item's ``<at_ms>:<message id>``.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from relayq.ops.message_page import ListedMessage, MessagePage, filtered_page
from relayq.streams.errors import ConfigurationError, ValidationError
from relayq.streams.keys import Keys
from relayq.streams.outcome import FINISHED_STATES, OutcomeRecord, decode_record
from relayq.streams.validation import (
    MAX_CONVERSATION_LENGTH,
    MAX_ID_LENGTH,
    MAX_RECIPIENT_LENGTH,
    check_identifier,
)

__all__ = ("SEARCHABLE_STATES", "lookup_members", "search_messages")

SEARCHABLE_STATES = tuple(state.value for state in FINISHED_STATES)
_SCAN_FACTOR = 4
"""A page looks at up to this many times ``limit`` candidates when it filters records."""
_MS_DIGITS = 13

_Candidate = tuple[bytes, int, str, int]
"""(lookup member, at_ms, message id, partition)."""


def lookup_members(
    message_id: str, at_ms: int, conversation: str, recipient: str | None
) -> list[bytes]:
    """The lookup members of one finished record, as the scripts write them (for seeding
    and checks; ``_retain.lua``'s ``lookup_members`` is the one the workers use)."""
    tail = b"%013d\x00%s" % (at_ms, message_id.encode())
    members = [_prefix(conversation, None) + tail]
    if recipient is not None:
        members.append(_prefix(None, recipient) + tail)
    return members


def _prefix(conversation: str | None, recipient: str | None) -> bytes:
    """The members' common start: the conversation's if given, else the recipient's."""
    if conversation is not None:
        return b"c\x00" + conversation.encode() + b"\x00"
    assert recipient is not None
    return b"r\x00" + recipient.encode() + b"\x00"


def _cursor(after: str | None) -> bytes | None:
    """The ``<ms13>\\0<id>`` tail a cursor stands for."""
    if after is None:
        return None
    ms, _, message_id = after.partition(":")
    if not ms.isdigit() or len(ms) > _MS_DIGITS or not message_id:
        raise ValidationError("after", f"{after[:60]!r} is not a cursor (<ms>:<message id>)")
    check_identifier("after", message_id, MAX_ID_LENGTH)
    return ms.zfill(_MS_DIGITS).encode() + b"\x00" + message_id.encode()


def _check(conversation: str | None, recipient: str | None, state: str | None) -> None:
    if conversation is None and recipient is None:
        raise ValidationError("conversation", "give a conversation or a recipient to search by")
    if conversation is not None:
        check_identifier("conversation", conversation, MAX_CONVERSATION_LENGTH)
    if recipient is not None:
        check_identifier("recipient", recipient, MAX_RECIPIENT_LENGTH)
    if state is not None and state not in SEARCHABLE_STATES:
        raise ValidationError(
            "state", f"{state[:40]!r}: a search finds {' or '.join(SEARCHABLE_STATES)} messages"
        )


async def search_messages(
    client: Redis,
    keys: Keys,
    *,
    conversation: str | None = None,
    recipient: str | None = None,
    tenant: str | None = None,
    state: str | None = None,
    limit: int,
    after: str | None = None,
    indexed: bool = True,
) -> MessagePage:
    """One page of the finished messages of ``conversation`` (and of ``recipient`` too, if
    both are given), or of ``recipient``; only ``tenant``'s and ``state``'s if given.
    ``indexed``: ``Settings.search_index`` (off: refused, saying so)."""
    if not indexed:
        raise ConfigurationError(
            "search by conversation or recipient is off here (RELAYQ_SEARCH_INDEX=0): "
            "turn it on for the workers and this process; records kept from then on are found"
        )
    _check(conversation, recipient, state)
    prefix = _prefix(conversation, recipient)
    if conversation is not None and tenant is not None:
        partitions: range | list[int] = [keys.partition_of(tenant, conversation)]
    else:
        partitions = range(keys.partitions)
    filtered = tenant is not None or state is not None or None not in (conversation, recipient)
    scan = limit * (_SCAN_FACTOR if filtered else 1)
    ordered = await _candidates(client, keys, partitions, prefix, _cursor(after), scan)
    chosen = ordered[:scan]
    items = await _load(client, keys, prefix, chosen)
    kept = [
        item for item in items
        if (tenant is None or item.tenant == tenant)
        and (state is None or item.state == state)
        and (recipient is None or _recipient(item) == recipient)
    ]  # fmt: skip
    more = len(ordered) > scan  # candidates beyond what this page looked at
    return filtered_page(kept, limit, f"{chosen[-1][1]}:{chosen[-1][2]}" if more else None)


async def _candidates(
    client: Redis, keys: Keys, partitions: range | list[int], prefix: bytes,
    after: bytes | None, scan: int,
) -> list[_Candidate]:  # fmt: skip
    """Up to ``scan + 1`` members per partition past the cursor, merged newest first."""
    high = b"[" + prefix + b"\xff" if after is None else b"(" + prefix + after
    low = b"(" + prefix
    async with client.pipeline(transaction=False) as pipe:
        for partition in partitions:
            pipe.zrevrangebylex(keys.outcome_lookup(partition), high, low, start=0, num=scan + 1)
        replies: list[Any] = await pipe.execute()
    found = []
    for partition, members in zip(partitions, replies, strict=True):
        for member in members:
            ms, _, message_id = member[len(prefix) :].partition(b"\x00")
            if ms.isdigit() and message_id:
                found.append((member, int(ms), message_id.decode(), partition))
    found.sort(key=lambda c: c[0], reverse=True)  # one prefix: the tail orders them
    return found


async def _load(
    client: Redis, keys: Keys, prefix: bytes, chosen: list[_Candidate]
) -> list[ListedMessage]:
    """The records of ``chosen``; a member whose record is gone or says otherwise (trimmed,
    replayed, finished again) is skipped and removed from its partition's index."""
    async with client.pipeline(transaction=False) as pipe:
        for _member, _ms, message_id, partition in chosen:
            pipe.hget(keys.outcomes(partition), message_id)
        blobs: list[Any] = await pipe.execute()
    items, stale = [], []
    for (member, ms, message_id, partition), blob in zip(chosen, blobs, strict=True):
        record = decode_record(blob) if blob is not None else None
        if record is None or not _matches(record, prefix, ms):
            stale.append((partition, member))
            continue
        items.append(
            ListedMessage(
                message_id=message_id,
                state=record.state,
                at_ms=ms,
                partition=partition,
                tenant=record.tenant,
                conversation=record.conversation,
                priority=record.priority,
                record=record,
            )
        )
    if stale:
        async with client.pipeline(transaction=False) as pipe:
            for partition, member in stale:
                pipe.zrem(keys.outcome_lookup(partition), member)
            await pipe.execute()
    return items


def _recipient(item: ListedMessage) -> str | None:
    return item.record.recipient if item.record is not None else None


def _matches(record: OutcomeRecord, prefix: bytes, ms: int) -> bool:
    """Whether ``record`` is still the finished record the member was written for."""
    if record.state not in SEARCHABLE_STATES or record.at_ms != ms:
        return False
    name = record.conversation if prefix[:1] == b"c" else record.recipient
    return name is not None and prefix == prefix[:2] + name.encode() + b"\x00"
