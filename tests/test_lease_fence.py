"""The lease fence: a worker frozen (SIGSTOP) past its lease TTL loses its partitions to
another worker, and once it runs again (SIGCONT) it sends nothing it read in its old
tenure — the new owner delivered those. Order holds throughout."""

from __future__ import annotations

import signal
import time

import redis

from relayq.consumers.membership import desired_partitions
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    all_ids,
    check_order,
    conversation_requests,
    delivered_ids,
    lease_tokens,
    live_workers,
    merge_sent,
    merged_deliveries,
    pending_message_ids,
    pending_total,
    send_all,
    wait_until,
)


def test_a_paused_worker_sends_nothing_after_losing_its_leases(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(lease_ttl=2.0, send_timeout=0.5, concurrency=16, read_count=50)
    # One provider per worker: what A sends is told apart from what B sends.
    provider_a = make_provider(latency=0.02)
    provider_b = make_provider(latency=0.02)
    first = send_all(settings, conversation_requests(60, 25))
    worker_a = workers.start(provider_a.url, settings=settings)
    worker_b = workers.start(provider_b.url, settings=settings)

    def settled() -> bool:
        return (
            len(live_workers(redis_client, keys)) == 2
            and all(lease_tokens(redis_client, keys).values())
            and bool(provider_a.deliveries())
            and bool(provider_b.deliveries())
        )

    wait_until(settled, timeout=20, message="both workers delivering, every partition leased")
    id_a = worker_a.worker_id(redis_client, keys)
    assert id_a is not None
    partitions_a = desired_partitions(id_a, live_workers(redis_client, keys), keys.partitions)
    assert partitions_a
    wait_until(
        lambda: pending_total(redis_client, keys, id_a) > 0, timeout=10, message="A holds work"
    )
    tokens_a = lease_tokens(redis_client, keys)

    # Freeze A with entries read and not delivered: stale work it must never send now.
    worker_a.send_signal(signal.SIGSTOP)
    stale = pending_message_ids(redis_client, keys, id_a)
    assert stale, "A was frozen holding entries"

    # Its leases run out and B takes its partitions over ...
    def b_took_over() -> bool:
        now = lease_tokens(redis_client, keys)
        return all(now[p] is not None and now[p] != tokens_a[p] for p in partitions_a)

    wait_until(b_took_over, timeout=20, message="B holds A's partitions")
    tokens_b = lease_tokens(redis_client, keys)
    # ... and delivers everything, A's stale entries included.
    wait_until(
        lambda: (
            delivered_ids(provider_a, provider_b) >= all_ids(first)
            and pending_total(redis_client, keys) == 0
        ),
        timeout=60,
        message="B delivered and acknowledged everything",
        interval=0.1,
    )
    assert stale <= delivered_ids(provider_b)

    requests_a = provider_a.provider.stats()["requests"]
    resumed_ns = time.time_ns()
    worker_a.send_signal(signal.SIGCONT)

    # A comes back: it finds its leases gone, rejoins, and B hands its partitions back.
    def a_took_back() -> bool:
        now = lease_tokens(redis_client, keys)
        return id_a in live_workers(redis_client, keys) and all(
            now[p] is not None and now[p] != tokens_b[p] for p in partitions_a
        )

    wait_until(a_took_back, timeout=20, message="A owns its partitions again")
    # Between SIGCONT and now A had its stale entries in memory, and sent none of them.
    assert provider_a.provider.stats()["requests"] == requests_a
    assert not [d for d in provider_a.deliveries() if d.received_ns > resumed_ns]
    assert worker_a.alive() and worker_b.alive()

    # Both deliver what comes next, and every conversation is in order from start to end.
    second = send_all(settings, conversation_requests(60, 5, prefix="c"))
    sent = merge_sent(first, second)
    wait_until(
        lambda: delivered_ids(provider_a, provider_b) >= all_ids(sent),
        timeout=60,
        message="the second batch delivered",
        interval=0.1,
    )
    assert delivered_ids(provider_a) & all_ids(second), "A delivers again in its new tenure"
    result = check_order(sent, merged_deliveries(provider_a, provider_b))
    assert result.delivered == all_ids(sent)
    assert result.unexpected == []
    assert result.violations == [], result.violations[:10]


def test_a_pause_shorter_than_the_lease_skips_nothing(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # Lease 6 s, sends of at most 2 s, renewed every 1 s. A 4.4 s pause ends 4.4-5.4 s
    # after the last renewal: past the fence (no send may start 2 s or less before the
    # lease could end) but before the lease itself ends. The worker must hold its sends
    # back and, once it has renewed its leases, go on with the very messages it held
    # back — none skipped, none out of order.
    settings = settings.replace(lease_ttl=6.0, send_timeout=2.0)
    provider = make_provider(latency=0.02)
    sent = send_all(settings, conversation_requests(40, 15))
    worker = workers.start(provider.url, settings=settings)
    wait_until(lambda: len(provider.deliveries()) >= 100, timeout=20, message="worker delivering")
    tokens = lease_tokens(redis_client, keys)
    worker.send_signal(signal.SIGSTOP)
    time.sleep(4.4)
    worker.send_signal(signal.SIGCONT)

    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent) and pending_total(redis_client, keys) == 0,
        timeout=30,
        message="everything delivered and acknowledged after the pause",
        interval=0.1,
    )
    result = check_order(sent, provider.deliveries())
    assert result.violations == [], result.violations[:10]
    assert result.delivered == all_ids(sent)
    # It kept its leases: the pause was shorter than the lease.
    assert lease_tokens(redis_client, keys) == tokens
