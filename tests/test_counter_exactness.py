"""The delivered counters stay exact across a kill -9 (issue 14): after a worker is killed
mid-run and another finishes the work, the durable ``delivered`` counts equal the messages
the provider received, minus the duplicates the crash caused (counted here from the
provider's own log), and the batch's progress and outcome records agree."""

from __future__ import annotations

import json
import signal
from collections import Counter

import redis

from relayq import SendRequest, SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, delivered_ids, merged_deliveries, pending_total, wait_until

MESSAGES = 600


def _delivered_counters(redis_client: redis.Redis, keys: Keys) -> Counter[str]:
    totals: Counter[str] = Counter()
    for partition in range(keys.partitions):
        counts: dict[bytes, bytes] = redis_client.hgetall(keys.counts(partition))  # type: ignore[assignment]
        for field, value in counts.items():
            state, _level, tenant = field.decode().split(":", 2)
            if state == "delivered":
                totals[tenant] += int(value)
    return totals


def test_delivered_counters_are_exact_across_a_kill_9(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(concurrency=16, lease_ttl=3.0, send_timeout=1.0)
    requests = [
        SendRequest(
            tenant=f"t{n % 3}", conversation=f"c{n % 60}", recipient="+15550100", payload={"n": n}
        )
        for n in range(MESSAGES)
    ]
    with SyncProducer(settings) as producer:
        batch = producer.send_many(requests)
    sent = Counter(request.tenant for request in requests)

    slow, fast = make_provider(latency=0.02), make_provider()
    victim = workers.start(slow.url, settings=settings)
    wait_until(lambda: len(delivered_ids(slow)) >= 150, timeout=60, message="150 delivered")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert len(delivered_ids(slow)) < MESSAGES, "the kill came while messages still flowed"
    workers.start(fast.url, settings=settings)
    wait_until(
        lambda: (
            len(delivered_ids(slow, fast)) == MESSAGES and pending_total(redis_client, keys) == 0
        ),
        timeout=60,
        message="every message delivered and acknowledged",
    )

    received = Counter(d.message_id for d in merged_deliveries(slow, fast))
    duplicates = sum(count - 1 for count in received.values())
    print(f"received={sum(received.values())} duplicates={duplicates}")
    counted = _delivered_counters(redis_client, keys)
    assert sum(counted.values()) == sum(received.values()) - duplicates == MESSAGES
    assert counted == sent
    assert json.loads(redis_client.hget(keys.batch(batch.batch_id), "accepted") or b"0") == MESSAGES
    batch_delivered = sum(
        int(redis_client.hget(keys.batch_counts(p, batch.batch_id), "delivered") or 0)
        for p in range(keys.partitions)
    )
    assert batch_delivered == MESSAGES
