"""Dead letters by tenant (issue 16: "every list is paged in Redis"): ``dead_letter_11.lua``
indexes each dead letter under its tenant in the step that writes it; a tenant's page reads
that index, never another tenant's entries; replay, delete and purge remove what they
remove from it; a partition indexed before the index existed is indexed on first read; a
member whose entry is gone is skipped and dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from relayq.ops.dead_letter_inspection import DeadLetterFilter, read_page
from relayq.ops.dead_letter_repair import DeadLetterRepair
from relayq.producers import SyncProducer
from relayq.streams.dead_letter_index import COMPLETE, dlq_id_of, index_member
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool

_TENANTS = ("acme", "bolt", "acme-2")
"""``acme-2`` starts with ``acme``: a prefix must not take the other's members."""


def _dead_letter_all(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool, per_tenant: int
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
    failing = make_provider(fail_rate=1.0)
    assert workers.start(failing.url, burst=True, settings=settings).wait(timeout=90) == 0
    return sent


def _members(client: redis.Redis, keys: Keys) -> dict[int, set[bytes]]:
    found: dict[int, set[bytes]] = {}
    for partition in range(keys.partitions):
        members: Any = client.zrange(keys.dead_letter_tenants(partition), 0, -1)
        found[partition] = set(members)
    return found


def _dlq_entries(client: redis.Redis, keys: Keys) -> dict[int, set[bytes]]:
    """The members the index should hold: one per dead letter, by its tenant."""
    expected: dict[int, set[bytes]] = {}
    for partition in range(keys.partitions):
        entries: Any = client.xrange(keys.dead_letter(partition))
        expected[partition] = {
            index_member(_tenant(fields), dlq_id.decode()).encode() for dlq_id, fields in entries
        }
    return expected


def _tenant(fields: dict[bytes, bytes]) -> str:
    from relayq.streams.codec import decode_entry

    return decode_entry({b"m": fields[b"entry:m"]}).tenant


def _pages(settings: Settings, keys: Keys, tenant: str, limit: int) -> list[str]:
    """Every page of ``tenant``'s dead letters, ``limit`` at a time: the message ids."""

    async def read() -> list[str]:
        client = create_client(settings)
        found: list[str] = []
        after = None
        try:
            while True:
                page = await read_page(
                    client, keys, DeadLetterFilter(tenant=tenant), limit=limit, after=after
                )
                found += [letter.message.id for letter in page.items if letter.message]
                assert all(letter.message.tenant == tenant for letter in page.items)  # type: ignore[union-attr]
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
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=1)
    sent = _dead_letter_all(settings, make_provider, workers, per_tenant=12)
    expected = _dlq_entries(redis_client, keys)
    assert sum(len(members) for members in expected.values()) == 36
    # Written by the script that dead-lettered them (the index is not built by a reader yet).
    assert {p: m - {COMPLETE.encode()} for p, m in _members(redis_client, keys).items()} == expected
    for tenant in _TENANTS:
        listed = _pages(settings, keys, tenant, limit=5)
        assert sorted(listed) == sorted(sent[tenant])  # each once, no other tenant's
        assert len(listed) == len(set(listed))


def test_replay_delete_and_purge_remove_their_members(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=1)
    _dead_letter_all(settings, make_provider, workers, per_tenant=4)

    async def repair(tool: DeadLetterRepair) -> None:
        acme = await read_page(tool.client, keys, DeadLetterFilter(tenant="acme"), limit=10)
        await tool.replay_ids([acme.items[0].ref])
        await tool.delete_ids([acme.items[1].ref])
        assert await tool.purge(DeadLetterFilter(tenant="bolt", until_ms=2**42)) == 4

    _repairing(settings, keys, repair)
    expected = _dlq_entries(redis_client, keys)
    held = {p: m - {COMPLETE.encode()} for p, m in _members(redis_client, keys).items()}
    assert held == expected
    tenants = [dlq_tenant for members in held.values() for dlq_tenant in members]
    assert sum(1 for m in tenants if m.startswith(b"acme\x00")) == 2
    assert not any(m.startswith(b"bolt\x00") for m in tenants)

    async def purge_all(tool: DeadLetterRepair) -> None:
        # acme's 2 and acme-2's 4: one XTRIM per partition
        assert await tool.purge(DeadLetterFilter(until_ms=2**42)) == 6

    _repairing(settings, keys, purge_all)
    assert all(m <= {COMPLETE.encode()} for m in _members(redis_client, keys).values())


def test_a_partition_without_a_complete_index_is_indexed_on_first_read(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=1)
    sent = _dead_letter_all(settings, make_provider, workers, per_tenant=6)
    expected = _dlq_entries(redis_client, keys)
    for partition in range(keys.partitions):  # as a namespace from before the index
        redis_client.delete(keys.dead_letter_tenants(partition))
    assert sorted(_pages(settings, keys, "bolt", limit=4)) == sorted(sent["bolt"])
    rebuilt = _members(redis_client, keys)
    for partition, members in rebuilt.items():
        assert members == expected[partition] | {COMPLETE.encode()}


def test_a_member_whose_entry_is_gone_is_skipped_and_dropped(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=1)
    sent = _dead_letter_all(settings, make_provider, workers, per_tenant=3)
    partition, member = next(
        (p, m) for p, ms in _members(redis_client, keys).items() for m in ms
        if m.startswith(b"acme\x00")
    )  # fmt: skip
    redis_client.xdel(keys.dead_letter(partition), dlq_id_of(member))  # behind relayq's back
    assert len(_pages(settings, keys, "acme", limit=2)) == len(sent["acme"]) - 1
    assert redis_client.zscore(keys.dead_letter_tenants(partition), member) is None
