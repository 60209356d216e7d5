"""The worker's seams: ownership reports what changed and the worker acts on it; a reader
that fails gives its partition back; every key and pause scope comes from streams.keys;
the consumer-group helpers answer the same on any client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
import redis
import structlog.testing
from redis.asyncio import Redis

from relayq.consumers.envelope import PartitionState
from relayq.consumers.membership import desired_partitions
from relayq.consumers.ownership import Ownership
from relayq.consumers.partition_lease import LeaseTable
from relayq.consumers.pause_state import PauseState
from relayq.consumers.simple_deliverers import SinkDeliverer
from relayq.consumers.worker import Worker
from relayq.ops.controls import Controls
from relayq.producers import Producer
from relayq.streams.keys import GROUP, PAUSE_ALL, Keys
from relayq.streams.message import Priority
from relayq.streams.redis_server import RedisServer
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings
from relayq.streams.stream_groups import ensure_groups, find_group, parse_stream_id
from tests.support import async_wait_until, lease_tokens


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    async_client = Redis.from_url(redis_server.url)
    try:
        yield async_client
    finally:
        await async_client.aclose()


def _ownership(client: Redis, keys: Keys, worker_id: str) -> Ownership:
    leases = LeaseTable(client, Scripts(client), keys, ttl=3.0)
    return Ownership(client=client, keys=keys, leases=leases, worker_id=worker_id, lease_ttl=3.0)


# -- ownership reports, the worker acts ---------------------------------------------------


async def test_a_lone_worker_is_told_it_acquired_every_partition(
    client: Redis, keys: Keys, redis_client: redis.Redis
) -> None:
    ownership = _ownership(client, keys, "w-a")
    assert await ownership.renew() == []
    assert ownership.to_release() == []
    acquired = await ownership.acquire()

    assert sorted(s.partition for s in acquired) == list(range(keys.partitions))
    tokens = lease_tokens(redis_client, keys)
    assert all(tokens[s.partition] == s.token.encode() for s in acquired)
    assert await ownership.acquire() == [], "what is held is not reported again"


async def test_a_lease_taken_by_someone_else_is_reported_lost_once(
    client: Redis, keys: Keys, redis_client: redis.Redis
) -> None:
    ownership = _ownership(client, keys, "w-a")
    await ownership.renew()
    await ownership.acquire()
    redis_client.set(keys.lease(2), "someone-else")

    (lost,) = await ownership.renew()
    assert lost.partition == 2
    assert 2 not in ownership.held
    assert await ownership.renew() == []


async def test_partitions_of_a_new_worker_are_handed_over_only_once_released(
    client: Redis, keys: Keys, redis_client: redis.Redis
) -> None:
    first, second = _ownership(client, keys, "w-a"), _ownership(client, keys, "w-b")
    await first.renew()
    await first.acquire()
    await second.renew()  # second's heartbeat: first sees two live workers from now on
    await first.renew()

    theirs = desired_partitions("w-b", ["w-a", "w-b"], keys.partitions)
    to_release = first.to_release()
    assert {s.partition for s in to_release} == theirs
    assert first.to_release() == [], "reported once, then being released"
    assert await second.acquire() == [], "still leased by the first worker while it drains"
    assert await first.acquire() == [], "nor taken back by the first"

    for state in to_release:
        await first.release(state)
        first.forget(state)
    assert set(first.held) == set(range(keys.partitions)) - theirs
    assert all(lease_tokens(redis_client, keys)[p] is None for p in theirs)
    assert {s.partition for s in await second.acquire()} == theirs


async def test_a_worker_waiting_for_a_dead_workers_leases_says_so_once(
    client: Redis, keys: Keys, redis_client: redis.Redis
) -> None:
    """A restarted worker whose partitions are still leased by its dead predecessor logs
    which ones it waits for and how long at most, once (not every tick)."""
    for partition in (1, 4):
        redis_client.set(keys.lease(partition), "dead-token", px=2500)
    ownership = _ownership(client, keys, "w-new")
    with structlog.testing.capture_logs() as logs:
        await ownership.renew()
        acquired = await ownership.acquire()
        await ownership.acquire()
    waiting = [entry for entry in logs if entry["event"] == "waiting_for_leases"]
    assert [entry["partitions"] for entry in waiting] == [[1, 4]]
    assert 0 < waiting[0]["seconds_at_most"] <= 2.5
    assert sorted(s.partition for s in acquired) == sorted(set(range(keys.partitions)) - {1, 4})


class _ReleaseFinishesMidRenew(LeaseTable):
    """A lease renewal during whose round trip a release of the same partition finishes
    (the worker's drain-and-release task runs while the ownership tick awaits Redis)."""

    ownership: Ownership

    async def renew(self, states: Iterable[PartitionState]) -> list[PartitionState]:
        held = list(states)
        for state in held:
            self.ownership.forget(state)
            await self._client.delete(self._keys.lease(state.partition))
        return await super().renew(held)


async def test_a_partition_released_while_its_renewal_was_in_flight_is_not_reported_lost(
    client: Redis, keys: Keys
) -> None:
    """Was a KeyError that ended the worker's ownership task, and so the worker (seen in
    tests/test_order.py under load)."""
    leases = _ReleaseFinishesMidRenew(client, Scripts(client), keys, ttl=3.0)
    ownership = Ownership(client=client, keys=keys, leases=leases, worker_id="w", lease_ttl=3.0)
    leases.ownership = ownership
    await ownership.renew()
    assert len(await ownership.acquire()) == keys.partitions
    assert await ownership.renew() == []
    assert ownership.held == {}


async def test_abandon_asks_for_one_release_of_the_current_tenure(
    client: Redis, keys: Keys
) -> None:
    ownership = _ownership(client, keys, "w-a")
    await ownership.renew()
    state, *_ = await ownership.acquire()

    assert ownership.abandon(state)
    assert not ownership.abandon(state), "already being released"
    await ownership.release(state)
    ownership.forget(state)
    assert state.partition not in ownership.held
    assert not ownership.abandon(state), "no longer held"
    (retaken,) = [s for s in await ownership.acquire() if s.partition == state.partition]
    assert retaken is not state


async def test_a_failed_reader_gives_its_partition_back_and_it_is_read_again(
    settings: Settings, keys: Keys, client: Redis, redis_client: redis.Redis
) -> None:
    """A reader that fails (here: its stream key holds a string, WRONGTYPE) makes the worker
    drain and release the partition; the next tick takes it again with a fresh reader, so
    once the key is repaired, its messages are delivered."""
    partition = keys.partition_of("t", "c")
    broken = keys.stream(partition, Priority.LOW)
    redis_client.set(broken, "not a stream")
    worker = Worker(SinkDeliverer(client, settings.namespace), settings, client=client)
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(worker.run())

        async def released_twice() -> bool:
            events = [e for e in logs if e.get("partition") == partition]
            return [e["event"] for e in events].count("partition_released") >= 2

        try:
            await async_wait_until(released_twice, timeout=20, message="released, retaken")
            first_failure = next(e for e in logs if e["event"] == "partition_reader_failed")
            assert first_failure["partition"] == partition
            redis_client.delete(broken)
            async with Producer(settings) as producer:
                message_id = await producer.send(
                    tenant="t", conversation="c", recipient="r", payload={}
                )
            expected = [f"t\x1fc\x1f{message_id}".encode()]

            async def delivered() -> bool:
                return bool(await client.lrange(keys.sink, 0, -1) == expected)

            await async_wait_until(
                delivered, timeout=20, message="delivered once the stream is repaired"
            )
        finally:
            worker.request_stop()
            await asyncio.wait_for(running, timeout=30)
    assert lease_tokens(redis_client, keys)[partition] is None, "released at shutdown"


# -- keys and pause scopes ------------------------------------------------------------------


async def test_the_pause_scopes_controls_write_are_the_ones_workers_read(
    client: Redis, keys: Keys, redis_client: redis.Redis
) -> None:
    controls, pauses = Controls(redis_client, keys), PauseState()
    controls.pause(tenant="acme")
    controls.pause(priority="low")
    await pauses.refresh(client, keys)

    assert pauses.is_paused(Priority.HIGH, "acme")
    assert pauses.is_paused(Priority.LOW, "other")
    assert not pauses.is_paused(Priority.HIGH, "other")
    controls.pause()
    await pauses.refresh(client, keys)
    assert pauses.scopes == {PAUSE_ALL, "tenant:acme", "priority:low"}
    assert pauses.is_paused(Priority.HIGH, "other")


async def test_the_sink_records_into_the_key_keys_names(
    settings: Settings, client: Redis, keys: Keys, redis_client: redis.Redis
) -> None:
    async with Producer(settings) as producer:
        message_id = await producer.send(tenant="t", conversation="c", recipient="r", payload={})
    await asyncio.wait_for(
        Worker(SinkDeliverer(client, keys.namespace), settings, client=client, burst=True).run(),
        timeout=30,
    )
    assert keys.sink == f"{keys.namespace}:sink"
    assert redis_client.lrange(keys.sink, 0, -1) == [f"t\x1fc\x1f{message_id}".encode()]


# -- the consumer group -------------------------------------------------------------------


@pytest.mark.parametrize("decode", [False, True])
async def test_group_helpers_work_on_decoding_and_raw_clients(
    redis_server: RedisServer, decode: bool
) -> None:
    async_client = Redis.from_url(redis_server.url, decode_responses=decode)
    try:
        await ensure_groups(async_client, ["s1", "s2"])
        await ensure_groups(async_client, ["s1", "s2"])  # BUSYGROUP is not an error
        await async_client.xadd("s1", {"f": "v"}, id="5-1")
        await async_client.xreadgroup(GROUP, "c", {"s1": ">"})
        await async_client.xgroup_create("s1", "someone-elses", id="0")
        groups: list[dict[str, Any]] = await async_client.xinfo_groups("s1")
    finally:
        await async_client.aclose()

    group = find_group(groups)
    assert group is not None and group["pending"] == 1
    assert parse_stream_id(group["last-delivered-id"]) == (5, 1)
    assert find_group([g for g in groups if g is not group]) is None


def test_stream_ids_compare_as_numbers() -> None:
    assert parse_stream_id(b"10-0") > parse_stream_id("9-99")
    assert parse_stream_id("7") == (7, 0)
