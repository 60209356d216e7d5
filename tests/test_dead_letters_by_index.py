"""Dead letters by tenant and by error kind (issue 16: "every list is paged in Redis"):
``dead_letter_11.lua`` indexes each dead letter under its kind and its tenant in the step
that writes it; a tenant's (kind's) page reads that index, never other entries; replay,
delete and purge remove what they remove from it; a partition indexed before the index
existed is indexed on first read; a member whose entry is gone is skipped and dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from relayq.ops.dead_letter_inspection import DeadLetterFilter, read_page
from relayq.ops.dead_letter_repair import DeadLetterRepair
from relayq.producers import SyncProducer
from relayq.streams.codec import decode_entry
from relayq.streams.dead_letter_index import COMPLETE, dlq_id_of, letter_members
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool

_TENANTS = ("acme", "bolt", "acme-2")
"""``acme-2`` starts with ``acme``: a prefix must not take the other's members."""


DeadLetterAll = Callable[[int], dict[str, list[str]]]


@pytest.fixture
def dead_letter_all(
    settings: Settings,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> DeadLetterAll:
    """With one attempt per message: ``dead_letter_all(n)`` dead-letters n messages of each
    tenant and a poison entry (see ``_dead_letter_all``)."""
    return lambda n: _dead_letter_all(
        settings.replace(max_attempts=1), redis_client, make_provider, workers, n
    )


def _dead_letter_all(
    settings: Settings,
    client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    per_tenant: int,
) -> dict[str, list[str]]:
    """Each tenant sends ``per_tenant`` messages over a few conversations; a provider that
    fails everything dead-letters them all. Message ids by tenant, in send order."""
    sent: dict[str, list[str]] = {tenant: [] for tenant in _TENANTS}
    with SyncProducer(settings) as producer:
        for n in range(per_tenant):
            for tenant in _TENANTS:
                message_id = producer.send(
                    tenant=tenant, conversation=f"c{n % 5}", recipient="+1555", payload={"n": n}
                )
                sent[tenant].append(message_id)
    # A poison entry (no message): dead-lettered as "poison", indexed by its kind only.
    client.xadd(Keys.from_settings(settings).stream(0, "normal"), {"m": b"\xc1 not msgpack"})
    failing = make_provider(fail_rate=1.0)
    assert workers.start(failing.url, burst=True, settings=settings).wait(timeout=90) == 0
    return sent


def _members(client: redis.Redis, keys: Keys) -> dict[int, set[bytes]]:
    found: dict[int, set[bytes]] = {}
    for partition in range(keys.partitions):
        members: Any = client.zrange(keys.dead_letter_index(partition), 0, -1)
        found[partition] = set(members)
    return found


def _dlq_entries(client: redis.Redis, keys: Keys) -> dict[int, set[bytes]]:
    """The members the index should hold: each dead letter's kind's and tenant's."""
    expected: dict[int, set[bytes]] = {}
    for partition in range(keys.partitions):
        entries: Any = client.xrange(keys.dead_letter(partition))
        expected[partition] = {
            member.encode()
            for dlq_id, fields in entries
            for member in letter_members(_tenant(fields), fields[b"kind"].decode(), dlq_id.decode())
        }
    return expected


def _tenant(fields: dict[bytes, bytes]) -> str | None:
    blob = fields.get(b"entry:m")
    return decode_entry({b"m": blob}).tenant if blob and blob[:1] != b"\xc1" else None


def _pages(
    settings: Settings, keys: Keys, limit: int, chosen: DeadLetterFilter
) -> list[str | None]:
    """Every page of the dead letters ``chosen`` takes, ``limit`` at a time: the message
    ids (None for a poison entry)."""

    async def read() -> list[str | None]:
        client = create_client(settings)
        found: list[str | None] = []
        after = None
        try:
            while True:
                page = await read_page(client, keys, chosen, limit=limit, after=after)
                found += [letter.message.id if letter.message else None for letter in page.items]
                assert all(chosen.matches(letter) for letter in page.items)
                if page.next is None:
                    return found
                after = page.next
        finally:
            await client.aclose()

    return asyncio.run(read())


def _repairing(
    settings: Settings, keys: Keys, repair: Callable[[DeadLetterRepair], Awaitable[None]]
) -> None:
    async def run() -> None:
        client = create_client(settings)
        try:
            await repair(DeadLetterRepair(client, keys, admission_window=200, actor="test"))
        finally:
            await client.aclose()

    asyncio.run(run())


def test_the_worker_indexes_each_dead_letter_and_pages_read_only_that_tenant(
    settings: Settings, keys: Keys, redis_client: redis.Redis, dead_letter_all: DeadLetterAll
) -> None:
    sent = dead_letter_all(12)
    expected = _dlq_entries(redis_client, keys)
    assert sum(len(members) for members in expected.values()) == 2 * 36 + 1  # + the poison
    # Written by the script that dead-lettered them (the index is not built by a reader yet).
    assert {p: m - {COMPLETE.encode()} for p, m in _members(redis_client, keys).items()} == expected
    for tenant in _TENANTS:
        listed = _pages(settings, keys, 5, DeadLetterFilter(tenant=tenant))
        assert sorted(listed) == sorted(sent[tenant])  # type: ignore[type-var]
        assert len(listed) == len(set(listed))  # each once, no other tenant's
    exhausted = _pages(settings, keys, 7, DeadLetterFilter(kind="exhausted"))
    assert sorted(exhausted) == sorted(i for ids in sent.values() for i in ids)  # type: ignore[type-var]
    assert _pages(settings, keys, 7, DeadLetterFilter(kind="poison")) == [None]
    assert _pages(settings, keys, 7, DeadLetterFilter(kind="stalled")) == []


def test_replay_delete_and_purge_remove_their_members(
    settings: Settings, keys: Keys, redis_client: redis.Redis, dead_letter_all: DeadLetterAll
) -> None:
    dead_letter_all(4)

    async def repair(tool: DeadLetterRepair) -> None:
        acme = await read_page(tool.client, keys, DeadLetterFilter(tenant="acme"), limit=10)
        await tool.replay_ids([acme.items[0].ref])
        await tool.delete_ids([acme.items[1].ref])
        assert await tool.purge(DeadLetterFilter(tenant="bolt", until_ms=2**42)) == 4

    _repairing(settings, keys, repair)
    expected = _dlq_entries(redis_client, keys)
    held = {p: m - {COMPLETE.encode()} for p, m in _members(redis_client, keys).items()}
    assert held == expected
    members = [member for held_here in held.values() for member in held_here]
    assert sum(1 for m in members if m.startswith(b"t\x00acme\x00")) == 2
    assert not any(m.startswith(b"t\x00bolt\x00") for m in members)
    assert sum(1 for m in members if m.startswith(b"k\x00exhausted\x00")) == 6

    async def purge_all(tool: DeadLetterRepair) -> None:
        # acme's 2, acme-2's 4 and the poison entry: one XTRIM per partition
        assert await tool.purge(DeadLetterFilter(until_ms=2**42)) == 7

    _repairing(settings, keys, purge_all)
    assert all(m <= {COMPLETE.encode()} for m in _members(redis_client, keys).values())


def test_a_partition_without_a_complete_index_is_indexed_on_first_read(
    settings: Settings, keys: Keys, redis_client: redis.Redis, dead_letter_all: DeadLetterAll
) -> None:
    sent = dead_letter_all(6)
    expected = _dlq_entries(redis_client, keys)
    for partition in range(keys.partitions):  # as a namespace from before the index
        redis_client.delete(keys.dead_letter_index(partition))
    bolt = _pages(settings, keys, 4, DeadLetterFilter(tenant="bolt"))
    assert sorted(bolt) == sorted(sent["bolt"])  # type: ignore[type-var]
    rebuilt = _members(redis_client, keys)
    for partition, members in rebuilt.items():
        assert members == expected[partition] | {COMPLETE.encode()}


def test_a_member_whose_entry_is_gone_is_skipped_and_dropped(
    settings: Settings, keys: Keys, redis_client: redis.Redis, dead_letter_all: DeadLetterAll
) -> None:
    sent = dead_letter_all(3)
    partition, member = next(
        (p, m) for p, ms in _members(redis_client, keys).items() for m in ms
        if m.startswith(b"t\x00acme\x00")
    )  # fmt: skip
    redis_client.xdel(keys.dead_letter(partition), dlq_id_of(member))  # behind relayq's back
    assert len(_pages(settings, keys, 2, DeadLetterFilter(tenant="acme"))) == len(sent["acme"]) - 1
    assert redis_client.zscore(keys.dead_letter_index(partition), member) is None
