"""Graceful shutdown: on SIGTERM a worker lets its in-flight sends finish, acknowledges
them, releases its leases and exits 0; the other worker takes its partitions over at once,
not after the lease TTL."""

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
    pending_total,
    send_all,
    wait_until,
)

CONCURRENCY = 16
LEASE_TTL = 30.0
TAKEOVER_LIMIT = 10.0
"""Well under LEASE_TTL: a takeover this fast cannot have waited for a lease to expire."""


def test_sigterm_finishes_in_flight_releases_leases_and_hands_over(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(
        lease_ttl=LEASE_TTL, send_timeout=3.0, shutdown_grace=10.0, concurrency=CONCURRENCY
    )
    # Each worker has its own provider, so what each one sent is known. 100 ms per request:
    # when SIGTERM comes, requests are in flight.
    provider_a = make_provider(latency=0.1)
    provider_b = make_provider(latency=0.1)
    first = send_all(settings, conversation_requests(100, 10))
    worker_a = workers.start(provider_a.url, settings=settings)
    worker_b = workers.start(provider_b.url, settings=settings)

    def settled() -> bool:
        ids = live_workers(redis_client, keys)
        leases = lease_tokens(redis_client, keys)
        return len(ids) == 2 and all(leases.values()) and bool(delivered_ids(provider_a))

    wait_until(settled, timeout=20, message="both workers running, every partition leased")
    id_a = worker_a.worker_id(redis_client, keys)
    assert id_a is not None
    partitions_a = desired_partitions(id_a, live_workers(redis_client, keys), keys.partitions)
    assert partitions_a and len(partitions_a) < keys.partitions
    # A's partitions hold A's tokens: it reached them by rendezvous and B gave them up.
    wait_until(
        lambda: pending_total(redis_client, keys, id_a) > 0,
        timeout=10,
        message="worker A is delivering",
    )
    tokens_before = lease_tokens(redis_client, keys)
    held_by_a = pending_total(redis_client, keys, id_a)

    signalled_ns = time.time_ns()
    worker_a.send_signal(signal.SIGTERM)
    assert worker_a.wait(timeout=20) == 0
    exited_ns = time.time_ns()

    # Its leases were released (or already taken by B), never left to expire.
    tokens_after = lease_tokens(redis_client, keys)
    for partition in partitions_a:
        assert tokens_after[partition] != tokens_before[partition], partition
    # It let its in-flight sends finish, and then stopped: of everything it had read,
    # what it delivered after the signal is what was in flight (at most `concurrency`),
    # plus what lanes started during the one Redis round trip of leaving the live-worker
    # set before it forgets its queued entries (at most one more per lane).
    after_signal = [d for d in provider_a.deliveries() if d.received_ns > signalled_ns]
    assert 0 < len(after_signal) <= 2 * CONCURRENCY
    assert held_by_a > 2 * CONCURRENCY, "A held far more than it had in flight"
    assert all(d.received_ns <= exited_ns for d in after_signal)

    # B takes over at once: everything sent before and after the shutdown is delivered
    # well within the lease TTL that an unreleased lease would have made it wait.
    second = send_all(settings, conversation_requests(100, 3, prefix="late"))
    sent = merge_sent(first, second)
    expected = all_ids(sent)
    wait_until(
        lambda: delivered_ids(provider_a, provider_b) >= expected,
        timeout=TAKEOVER_LIMIT,
        message="worker B delivered everything, A's partitions included",
        interval=0.1,
    )
    assert delivered_ids(provider_b) >= all_ids(second)
    wait_until(
        lambda: all(lease_tokens(redis_client, keys).values()),
        timeout=TAKEOVER_LIMIT,
        message="B holds every partition",
    )

    result = check_order(sent, merged_deliveries(provider_a, provider_b))
    assert result.delivered == expected
    assert result.violations == [], result.violations[:10]
    # In-flight sends finished and were acknowledged before the leases went: a graceful
    # hand-over repeats nothing.
    assert result.duplicates == 0
    wait_until(
        lambda: pending_total(redis_client, keys) == 0,
        timeout=10,
        message="everything acknowledged",
    )
    assert worker_b.alive()


def test_sigterm_while_the_worker_starts_up_is_a_clean_stop(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    """A SIGTERM during start-up (imports take most of a second on a loaded machine) stops
    the worker as soon as it can, exit 0; it used to kill it with the default action (-15)."""
    provider = make_provider()
    for delay in (0.3, 0.6, 0.9):
        worker = workers.start(provider.url)
        time.sleep(delay)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, f"SIGTERM after {delay}s: {worker.log_tail()}"
    assert live_workers(redis_client, keys) == []
    assert set(lease_tokens(redis_client, keys).values()) == {None}
