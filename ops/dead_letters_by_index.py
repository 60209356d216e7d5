"""One tenant's (or one error kind's) dead letters of a partition, read through the
partition's index (``streams.dead_letter_index``): a page costs one ``ZRANGE ... BYLEX
LIMIT`` and one pipelined XRANGE per dead letter on it, however many dead letters others
have.

A partition whose index is not known complete (dead letters written before the index
existed) is indexed from its stream first, once (``ensure_indexed``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from redis.asyncio import Redis

from relayq.ops.dead_letter_entry import DeadLetter, parse_dead_letter
from relayq.streams.codec import ENTRY_FIELD, readable_message
from relayq.streams.dead_letter_index import COMPLETE, dlq_id_of, letter_members, member_bounds
from relayq.streams.keys import Keys

__all__ = ("build_index", "ensure_indexed", "indexed_letters")

_BUILD_CHUNK = 1_000
_ENTRY_PREFIX = b"entry:"


async def build_index(client: Redis, keys: Keys, partition: int) -> int:
    """Index every dead letter of ``partition``, then mark the index complete; how many
    were indexed. (Dead letters written meanwhile are indexed by the script that writes
    them; one deleted meanwhile leaves members the readers drop.)"""
    stream, index = keys.dead_letter(partition), keys.dead_letter_index(partition)
    start, indexed = "-", 0
    while True:
        entries: Any = await client.xrange(stream, start, "+", count=_BUILD_CHUNK)
        members = {
            member: 0
            for dlq_id, fields in entries
            for member in letter_members(
                _tenant_of(fields), fields.get(b"kind", b"").decode(), dlq_id.decode()
            )
        }
        if members:
            await client.zadd(index, members)
            indexed += len(entries)
        if len(entries) < _BUILD_CHUNK:
            break
        start = f"({entries[-1][0].decode()}"
    await client.zadd(index, {COMPLETE: 0})
    return indexed


def _tenant_of(fields: dict[bytes, bytes]) -> str | None:
    blob = fields.get(_ENTRY_PREFIX + ENTRY_FIELD)
    message = readable_message({ENTRY_FIELD: blob}) if blob is not None else None
    return message.tenant if message is not None else None


async def ensure_indexed(client: Redis, keys: Keys, partitions: Sequence[int]) -> None:
    """Index the partitions of ``partitions`` whose index is not known complete."""
    async with client.pipeline(transaction=False) as pipe:
        for partition in partitions:
            pipe.zscore(keys.dead_letter_index(partition), COMPLETE)
        found = await pipe.execute()
    for partition, score in zip(partitions, found, strict=True):
        if score is None:
            await build_index(client, keys, partition)


async def indexed_letters(
    client: Redis,
    keys: Keys,
    partition: int,
    group: tuple[str, str],
    *,
    start: str | None,
    high: str | None,
    chunk: int,
) -> AsyncGenerator[DeadLetter, None]:
    """The dead letters of ``partition`` in one ``group`` (``(TENANT, tenant)`` or ``(KIND,
    kind)``) in stream order, from ``start`` (an entry id, ``(``-prefixed when exclusive;
    None: the first) to ``high`` (see ``member_bounds``), ``chunk`` members at a time."""
    stream, index = keys.dead_letter(partition), keys.dead_letter_index(partition)
    low, end = member_bounds(*group, start, high)
    while True:
        members: list[bytes] = await client.zrange(index, low, end, bylex=True, offset=0, num=chunk)  # type: ignore[assignment]
        if not members:
            return
        async with client.pipeline(transaction=False) as pipe:
            for member in members:
                dlq_id = dlq_id_of(member)
                pipe.xrange(stream, dlq_id, dlq_id)
            replies: list[Any] = await pipe.execute()
        gone = [member for member, reply in zip(members, replies, strict=True) if not reply]
        if gone:
            await client.zrem(index, *gone)
        for reply in replies:
            if reply:
                yield parse_dead_letter(partition, reply[0][0], reply[0][1])
        if len(members) < chunk:
            return
        low = "(" + members[-1].decode()
