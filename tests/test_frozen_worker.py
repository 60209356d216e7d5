"""A worker frozen longer than Redis's socket read timeout but shorter than its lease
keeps its partitions and goes on reading them: a timed-out blocking read is retried, not
the end of the partition's reader."""

from __future__ import annotations

import signal
import time

import redis

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
    pending_total,
    send_all,
    wait_until,
)


def test_a_worker_frozen_past_the_read_timeout_reads_its_partitions_again(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # Lease 24 s; the worker's read timeout is redis_timeout + 1 s = 3 s: a 7 s freeze
    # makes every blocked XREADGROUP of the worker time out while it keeps its leases.
    settings = settings.replace(lease_ttl=24.0, send_timeout=2.0, redis_timeout=2.0)
    provider = make_provider()
    first = send_all(settings, conversation_requests(20, 5))
    worker = workers.start(provider.url, settings=settings)
    wait_until(lambda: delivered_ids(provider) >= all_ids(first), timeout=20, message="first batch")
    tokens = lease_tokens(redis_client, keys)
    worker.send_signal(signal.SIGSTOP)
    time.sleep(7)
    worker.send_signal(signal.SIGCONT)

    second = send_all(settings, conversation_requests(40, 5, prefix="after"))
    wait_until(
        lambda: (
            delivered_ids(provider) >= all_ids(second) and pending_total(redis_client, keys) == 0
        ),
        timeout=30,
        message="messages sent after the freeze delivered by the same worker",
        interval=0.1,
    )
    assert lease_tokens(redis_client, keys) == tokens, "it kept every lease"
    result = check_order(
        second, [d for d in provider.deliveries() if d.conversation.startswith("after")]
    )
    assert result.violations == []
    assert worker.alive()
