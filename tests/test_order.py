"""Contract 1 and 2: nothing is lost, and each conversation reaches the provider in send
order — across retries, backoff and Retry-After — while conversations run in parallel over
two worker processes."""

from __future__ import annotations

import redis

from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    all_ids,
    check_order,
    conversation_requests,
    dead_letters,
    delivered_ids,
    pending_total,
    send_all,
    wait_until,
)

CONVERSATIONS = 200
PER_CONVERSATION = 20


def test_every_message_delivered_in_conversation_order_despite_failures(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # 30% of requests fail with 503, 5% are throttled (429, Retry-After 0.05 s).
    provider = make_provider(fail_rate=0.30, throttle_rate=0.05, retry_after=0.05, seed=7)
    # 30 attempts: the chance that some message fails 30 times in a row is 0.3**30 per
    # message, so nothing is dead-lettered and every message must arrive.
    settings = settings.replace(max_attempts=30)
    sent = send_all(settings, conversation_requests(CONVERSATIONS, PER_CONVERSATION))
    expected = all_ids(sent)
    assert len(expected) == CONVERSATIONS * PER_CONVERSATION

    for _ in range(2):
        workers.start(provider.url, settings=settings)

    wait_until(
        lambda: delivered_ids(provider) >= expected,
        timeout=120,
        message="every message delivered",
        interval=0.2,
    )
    result = check_order(sent, provider.deliveries())

    assert result.unexpected == []
    assert result.delivered == expected
    assert result.violations == [], result.violations[:10]
    stats = provider.provider.stats()
    assert stats["failed"] > 0 and stats["throttled"] > 0, "the provider misbehaved as asked"
    # Every acknowledgement reaches Redis, and nothing was given up on.
    wait_until(
        lambda: pending_total(redis_client, keys) == 0,
        timeout=15,
        message="every delivered entry acknowledged",
    )
    assert dead_letters(redis_client, keys) == []
    assert all(w.alive() for w in workers.processes)
