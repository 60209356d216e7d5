"""Provider back-pressure: a 429 with Retry-After for one tenant pauses that tenant, in
every worker, for that long, without using up a delivery attempt; other tenants go on."""

from __future__ import annotations

from typing import Any

import redis

from relayq.ops.controls import Controls
from relayq.ops.local_provider import ProviderBehaviour, ProviderThread
from relayq.producers import SendRequest
from relayq.streams.codec import decode_entry
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import (
    WorkerPool,
    all_ids,
    check_order,
    dead_letters,
    delivered_ids,
    merge_sent,
    send_all,
    wait_until,
)

RETRY_AFTER = 2
LATENCY = 0.02


def requests(tenant: str, conversations: int, per_conversation: int) -> list[SendRequest]:
    return [
        SendRequest(
            tenant=tenant, conversation=f"{tenant}-{c}", recipient="+15550100", payload={"i": i}
        )
        for i in range(per_conversation)
        for c in range(conversations)
    ]


def recorded_failures(client: redis.Redis, keys: Keys) -> dict[str, bytes]:
    """Message id -> its failed-attempt record ("failed:next_ms"), every partition."""
    found: dict[str, bytes] = {}
    for partition in range(keys.partitions):
        records: Any = client.hgetall(keys.attempts(partition))
        for entry_id, record in records.items():
            for stream in keys.streams(partition):
                entries: Any = client.xrange(stream, entry_id, entry_id)
                for _, fields in entries:
                    found[decode_entry(fields).id] = record
    return found


def test_429_pauses_only_that_tenant_for_retry_after_without_using_an_attempt(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool
) -> None:
    # max_attempts=2: had the 429 counted as a failed attempt, the message would have a
    # failure record now and be dead-lettered by one more failure. backoff_max above
    # Retry-After: it caps the wait honoured.
    settings = settings.replace(tenant_cap=5, max_attempts=2, backoff_max=5.0)
    # A's sends one at a time across both workers, so "A's next send" is well defined.
    Controls(redis_client, keys).set_tenant_limits("A", cap=1)
    sent = merge_sent(
        send_all(settings, requests("A", 4, 5)), send_all(settings, requests("B", 20, 15))
    )
    ids_a = {mid for (tenant, _), ids in sent.items() if tenant == "A" for mid in ids}
    ids_b = all_ids(sent) - ids_a
    behaviour = ProviderBehaviour(
        throttle_tenants={"A": 1}, retry_after=RETRY_AFTER, latency=LATENCY
    )
    with ProviderThread(behaviour) as provider:
        for _ in range(2):
            workers.start(provider.url, settings=settings)

        def throttled() -> list[Any]:
            return [a for a in provider.attempts() if a.status == 429]

        wait_until(throttled, timeout=20, message="A's first request answered 429")
        # While A waits: the pause is in Redis for every worker (set once the worker has
        # the answer), and the throttled message has no failed attempt recorded.
        wait_until(
            lambda: redis_client.exists(keys.tenant_pause("A")),
            timeout=1,
            message="A's pause recorded in Redis",
            interval=0.005,
        )
        pause_ms = int(redis_client.pttl(keys.tenant_pause("A")))
        assert 0 < pause_ms <= RETRY_AFTER * 1000, pause_ms
        [first] = throttled()
        assert first.message_id not in recorded_failures(redis_client, keys)

        wait_until(
            lambda: delivered_ids(provider) >= all_ids(sent),
            timeout=30,
            message="everything delivered once A's pause is over",
            interval=0.1,
        )
        attempts = provider.attempts()
        deliveries = provider.deliveries()

    assert [a.message_id for a in attempts if a.status == 429] == [first.message_id]
    assert first.tenant == "A"
    answered_ns = first.arrived_ns + LATENCY * 1e9  # the 429 left after the latency
    later_a = [a for a in attempts if a.tenant == "A" and a.arrived_ns > first.arrived_ns]
    waited = (min(a.arrived_ns for a in later_a) - answered_ns) / 1e9
    print(f"A's next request came {waited:.2f}s after the 429")
    assert 0.9 * RETRY_AFTER <= waited < 2 * RETRY_AFTER
    # The throttled message itself was sent again and accepted (order is checked below).
    assert any(a.message_id == first.message_id and a.status == 200 for a in later_a)

    # B went on meanwhile: (5 at a time, 20 ms each) hundreds of deliveries in 1.8 s.
    b_during = [
        d
        for d in deliveries
        if d.message_id in ids_b
        and answered_ns < d.received_ns < answered_ns + 0.9 * RETRY_AFTER * 1e9
    ]
    print(f"B deliveries during A's pause: {len(b_during)}")
    assert len(b_during) >= 50

    result = check_order(sent, deliveries)
    assert result.delivered == ids_a | ids_b and result.unexpected == []
    assert result.violations == [], result.violations[:10]
    assert dead_letters(redis_client, keys) == []
    assert first.message_id not in recorded_failures(redis_client, keys)
    assert provider.provider.stats()["throttled"] == 1
