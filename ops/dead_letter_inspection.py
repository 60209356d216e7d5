"""Reading the dead-letter streams: what failed, why, after how many attempts.

A dead letter is named by its reference ``<partition>-<entry id>`` (``3-1733220000000-0``):
the partition's stream (``{ns:P}:dlq``) and the entry in it. References sort as the
scans below go (partition by partition, oldest entry first), so a reference is also the
cursor of a page: the next page starts after it.

Scans read a partition's stream in chunks (``XRANGE`` with an exclusive start), so no
scan ever holds more than one chunk of a dead-letter stream; the time range of a filter is
the range of entry ids (the time Redis took the dead letter in), so it costs nothing. A
filter on a tenant or an error kind reads the partitions' indexes instead of the streams
(``ops.dead_letters_by_index``): its page never reads another tenant's (kind's) entries.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import msgspec
import redis
from redis.asyncio import Redis as AsyncRedis

from relayq.ops.dead_letter_entry import DeadLetter, format_ref, parse_dead_letter
from relayq.ops.dead_letters_by_index import ensure_indexed, indexed_letters
from relayq.streams.dead_letter_index import KIND, TENANT
from relayq.streams.keys import Keys
from relayq.streams.message import Message

__all__ = (
    "SCAN_CHUNK",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterPage",
    "count_dead_letters",
    "format_ref",
    "letter_view",
    "parse_dead_letter",
    "parse_ref",
    "read_dead_letter",
    "read_dead_letters",
    "read_page",
    "resolve_ref",
    "scan_dead_letters",
)

SCAN_CHUNK = 100
"""Entries read per XRANGE of a scan."""
_REF = re.compile(r"^(\d+)-(\d+-\d+)$")


class DeadLetterFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which dead letters a list, replay or purge takes (None: any)."""

    tenant: str | None = None
    conversation: str | None = None
    kind: str | None = None
    since_ms: int | None = None
    """Dead-lettered at or after (Unix ms, the entry id's time)."""
    until_ms: int | None = None
    """Dead-lettered before (Unix ms)."""

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` passes (time is checked by the scan's id range). A poison
        entry has no tenant or conversation: a filter on either never takes it."""
        if self.kind is not None and letter.kind != self.kind:
            return False
        if self.tenant is None and self.conversation is None:
            return True
        message = letter.message
        return (
            message is not None
            and self.tenant in (None, message.tenant)
            and self.conversation in (None, message.conversation)
        )

    def partitions(self, keys: Keys) -> range:
        """The partitions worth scanning: one when tenant and conversation are both given."""
        if self.tenant is not None and self.conversation is not None:
            partition = keys.partition_of(self.tenant, self.conversation)
            return range(partition, partition + 1)
        return range(keys.partitions)

    def index_group(self) -> tuple[str, str] | None:
        """The index group a scan reads instead of the streams (the tenant's, else the
        kind's), None when neither is chosen."""
        if self.tenant is not None:
            return TENANT, self.tenant
        if self.kind is not None:
            return KIND, self.kind
        return None

    def describe(self) -> str:
        """The filter as text (the repair log's scope): ``tenant=acme kind=permanent``."""
        parts = [f"{name}={value}" for name, value in msgspec.structs.asdict(self).items()]
        chosen = [part for part in parts if not part.endswith("=None")]
        return " ".join(chosen) or "all"


class DeadLetterPage(msgspec.Struct, frozen=True):
    items: list[DeadLetter]
    next: str | None
    """The cursor of the next page (``after=``), None when this page is the last."""


def parse_ref(text: str, keys: Keys) -> tuple[int, str]:
    """(partition, entry id) of a reference; ValueError naming what is wrong."""
    found = _REF.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a dead-letter id (<partition>-<ms>-<seq>)")
    partition = int(found[1])
    if partition >= keys.partitions:
        raise ValueError(
            f"{text!r} names partition {partition}; the namespace has {keys.partitions}"
        )
    return partition, found[2]


def read_dead_letters(client: redis.Redis, keys: Keys, *, limit: int = 10_000) -> list[DeadLetter]:
    """Dead letters of every partition (oldest first within a partition), up to ``limit``."""
    result: list[DeadLetter] = []
    for partition in range(keys.partitions):
        entries: Any = client.xrange(keys.dead_letter(partition), count=limit - len(result))
        result.extend(parse_dead_letter(partition, dlq_id, fields) for dlq_id, fields in entries)
        if len(result) >= limit:
            break
    return result


async def read_dead_letter(client: AsyncRedis, keys: Keys, ref: str) -> DeadLetter | None:
    """The dead letter ``ref`` names, or None when it is gone (replayed, deleted)."""
    partition, dlq_id = parse_ref(ref, keys)
    entries: Any = await client.xrange(keys.dead_letter(partition), dlq_id, dlq_id)
    if not entries:
        return None
    found_id, fields = entries[0]
    return parse_dead_letter(partition, found_id, fields)


def _bounds(chosen: DeadLetterFilter) -> tuple[str, str]:
    low = "-" if chosen.since_ms is None else f"{chosen.since_ms}-0"
    # Entries dead-lettered before until_ms: ids up to (until_ms - 1)-<any seq>.
    high = "+" if chosen.until_ms is None else str(chosen.until_ms - 1)
    return low, high


def _entry_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _start(partition: int, after: tuple[int, str] | None, low: str) -> str | None:
    """Where the scan of ``partition`` begins (an XRANGE start); None when the cursor is
    past the partition."""
    if after is None or after[0] < partition:
        return low
    if after[0] > partition:
        return None
    if low != "-" and _entry_id(after[1]) < _entry_id(low):
        return low
    return f"({after[1]}"


def _empty_range(chosen: DeadLetterFilter) -> bool:
    until = chosen.until_ms
    return until is not None and (until <= 0 or until <= (chosen.since_ms or 0))


async def scan_dead_letters(
    client: AsyncRedis,
    keys: Keys,
    chosen: DeadLetterFilter,
    *,
    after: str | None = None,
    chunk: int = SCAN_CHUNK,
) -> AsyncGenerator[DeadLetter, None]:
    """The dead letters ``chosen`` takes, in reference order, after the cursor ``after``;
    read ``chunk`` entries at a time (entries deleted meanwhile are simply not seen)."""
    cursor = None if after is None else parse_ref(after, keys)
    low, high = _bounds(chosen)
    if _empty_range(chosen):
        return
    partitions = chosen.partitions(keys)
    group = chosen.index_group()
    if group is not None:
        await ensure_indexed(client, keys, partitions)
    for partition in partitions:
        start = _start(partition, cursor, low)
        if start is None:
            continue
        if group is not None:
            letters = indexed_letters(
                client, keys, partition, group, start=None if start == "-" else start,
                high=None if high == "+" else high, chunk=chunk,
            )  # fmt: skip
        else:
            letters = _stream_letters(client, keys, partition, start, high, chunk)
        async with aclosing(letters):
            async for letter in letters:
                if chosen.matches(letter):
                    yield letter


async def _stream_letters(
    client: AsyncRedis, keys: Keys, partition: int, start: str, high: str, chunk: int
) -> AsyncGenerator[DeadLetter, None]:
    """Every dead letter of ``partition`` from ``start`` to ``high`` (XRANGE bounds),
    ``chunk`` entries per read."""
    while True:
        entries: Any = await client.xrange(keys.dead_letter(partition), start, high, count=chunk)
        for dlq_id, fields in entries:
            yield parse_dead_letter(partition, dlq_id, fields)
        if len(entries) < chunk:
            return
        start = f"({entries[-1][0].decode()}"


async def read_page(
    client: AsyncRedis,
    keys: Keys,
    chosen: DeadLetterFilter,
    *,
    limit: int,
    after: str | None = None,
) -> DeadLetterPage:
    """At most ``limit`` dead letters after ``after``, and the cursor of the next page."""
    items: list[DeadLetter] = []
    more = False
    async with aclosing(scan_dead_letters(client, keys, chosen, after=after)) as letters:
        async for letter in letters:
            if len(items) == limit:
                more = True
                break
            items.append(letter)
    return DeadLetterPage(items, items[-1].ref if more else None)


_ENTRY_ID = re.compile(r"^\d+-\d+$")


async def resolve_ref(client: AsyncRedis, keys: Keys, text: str) -> str | None:
    """The reference of the dead letter ``text`` names: a reference (returned as it is),
    a bare entry id (looked up in every partition: one pipelined XRANGE each), or the id of
    a dead-lettered message (its outcome record holds the entry id: one HGET per
    partition). None when nothing matches; ValueError for a bare entry id found in more
    than one partition."""
    if _REF.match(text):
        parse_ref(text, keys)
        return text
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(keys.partitions):
            if _ENTRY_ID.match(text):
                pipe.xrange(keys.dead_letter(partition), text, text)
            else:
                pipe.hget(keys.outcomes(partition), text)
        replies: list[Any] = await pipe.execute()
    if _ENTRY_ID.match(text):
        found = [format_ref(p, text) for p, reply in enumerate(replies) if reply]
        if len(found) > 1:
            raise ValueError(f"{text!r} is in several partitions: name one of {found}")
        return found[0] if found else None
    return _ref_of_record(replies)


def _ref_of_record(replies: list[Any]) -> str | None:
    for partition, blob in enumerate(replies):
        if blob:
            dlq_id = msgspec.json.decode(blob).get("dlq_id")
            return format_ref(partition, dlq_id) if dlq_id else None
    return None


async def count_dead_letters(client: AsyncRedis, keys: Keys) -> int:
    """Entries in every dead-letter stream (one pipelined XLEN per partition)."""
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(keys.partitions):
            pipe.xlen(keys.dead_letter(partition))
        return sum(int(n) for n in await pipe.execute())


def letter_view(letter: DeadLetter, *, detail: bool = False) -> dict[str, Any]:
    """A dead letter as a JSON-ready document: what ``dlq list`` shows per entry, and with
    ``detail`` what ``dlq show`` adds (the message's recipient, payload and metadata, or a
    poison entry's raw fields)."""
    message = letter.message
    view: dict[str, Any] = {
        "id": letter.ref,
        "partition": letter.partition,
        "dlq_id": letter.dlq_id,
        "kind": letter.kind,
        "error": letter.error,
        "attempts": letter.attempts,
        "failed_ms": letter.failed_ms,
        "replayable": message is not None,
        "message_id": message.id if message else None,
        "tenant": message.tenant if message else None,
        "conversation": message.conversation if message else None,
        "priority": message.priority if message else None,
    }
    if detail:
        view["origin_stream"] = letter.origin_stream
        view["origin_id"] = letter.origin_id
        view.update(_message_detail(message) if message else {"raw_fields": letter.raw_fields})
    return view


def _message_detail(message: Message) -> dict[str, Any]:
    return {
        "recipient": message.recipient,
        "sender": message.sender,
        "created_ms": message.created_ms,
        "dedup_key": message.dedup_key,
        "max_attempts": message.max_attempts,
        "metadata": message.metadata,
        "payload": message.payload.decode(errors="replace"),
    }
