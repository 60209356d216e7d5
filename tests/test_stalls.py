"""Contract 1 and 5 for attempts that never finish: a message whose worker keeps dying
mid-send (kill -9, out of memory, a crashing deliverer) is dead-lettered as ``stalled``
after ``max_stalls`` recoveries instead of killing worker after worker, and the count
survives every hand-over. Clean hand-overs, retries and read-ahead are never stalls."""

from __future__ import annotations

import signal
from typing import Any

import redis

from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.crashing_deliverer import CRASH_PAYLOAD, UNUSED_URL, WORKER_ENV, sunk_ids, tried_key
from tests.support import (
    WorkerPool,
    all_ids,
    conversation_requests,
    dead_letters,
    delivered_ids,
    pending_total,
    send_all,
    wait_until,
)


def _marks_left(client: redis.Redis, keys: Keys) -> int:
    return sum(int(client.hlen(keys.stalls(p))) for p in range(keys.partitions))


def test_a_message_that_kills_every_worker_is_dead_lettered_as_stalled(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool
) -> None:
    settings = settings.replace(max_attempts=3, max_stalls=2, lease_ttl=1.5, send_timeout=0.5)
    message: dict[str, Any] = {"tenant": "acme", "conversation": "c-1", "recipient": "+15550100"}
    with SyncProducer(settings) as producer:
        before = producer.send(**message, payload={"n": 1})
        killer = producer.send(**message, payload=CRASH_PAYLOAD)
        after = producer.send(**message, payload={"n": 3})

    exits: list[int] = []
    for _ in range(6):  # one more than the stalls allowed plus the worker that finishes
        worker = workers.start(UNUSED_URL, burst=True, settings=settings, **WORKER_ENV)
        exits.append(worker.wait(timeout=30))
        if exits[-1] == 0:
            break

    assert exits == [-signal.SIGKILL] * 3 + [0], workers.logs()
    tried: Any = redis_client.lrange(tried_key(keys.namespace), 0, -1)
    assert [t.decode() for t in tried].count(killer) == 3  # one attempt per dead worker
    [letter] = dead_letters(redis_client, keys)
    assert letter["origin_id"] and letter["kind"] == b"stalled"
    assert b"stalled 3 times" in letter["error"]
    assert letter["attempts"] == b"0"  # the stalls spent none of its retries
    sunk = sunk_ids(redis_client, keys)
    assert killer not in sunk and after in sunk
    assert sunk.index(before) < sunk.index(after)  # the conversation went on, in order
    assert pending_total(redis_client, keys) == 0
    assert _marks_left(redis_client, keys) == 0


def test_clean_hand_overs_retries_and_read_ahead_are_not_stalls(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    """With max_stalls=0 any stall dead-letters: SIGTERM bounces of a worker holding a deep
    read-ahead, and a provider failing a fifth of the requests, must leave none."""
    settings = settings.replace(max_attempts=30, max_stalls=0, concurrency=8, read_count=50)
    sent = send_all(settings, conversation_requests(40, 10))
    provider = make_provider(latency=0.02, fail_rate=0.2, seed=7)
    for bounce in range(3):
        worker = workers.start(provider.url, settings=settings)
        goal = 40 * (bounce + 1)
        wait_until(
            lambda goal=goal: len(delivered_ids(provider)) >= goal,  # type: ignore[misc]
            timeout=30,
            message=f"{goal} delivered before bounce {bounce}",
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, worker.log_tail()
    assert workers.start(provider.url, burst=True, settings=settings).wait(timeout=60) == 0

    assert dead_letters(redis_client, keys) == []
    assert delivered_ids(provider) == all_ids(sent)
    assert pending_total(redis_client, keys) == 0
    assert _marks_left(redis_client, keys) == 0


def test_a_worker_killed_mid_send_counts_one_stall_for_the_next_owner(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    """kill -9 while a request is at the provider: the mark is in Redis, the next owner
    counts it, and with max_stalls=1 it still delivers the message."""
    settings = settings.replace(max_stalls=1, lease_ttl=3.0, send_timeout=1.0)
    provider = make_provider(latency=0.6)
    with SyncProducer(settings) as producer:
        message_id = producer.send(
            tenant="acme", conversation="c-1", recipient="+15550100", payload={"n": 1}
        )
    partition = keys.partition_of("acme", "c-1")
    worker = workers.start(provider.url, settings=settings)
    wait_until(
        lambda: redis_client.hlen(keys.stalls(partition)) == 1,
        timeout=20,
        message="the attempt's stall mark written before the request left",
    )
    worker.process.kill()
    worker.wait(timeout=10)
    assert workers.start(provider.url, burst=True, settings=settings).wait(timeout=30) == 0
    assert message_id in delivered_ids(provider)
    assert dead_letters(redis_client, keys) == []
    assert _marks_left(redis_client, keys) == 0
