"""Delayed messages (``delay=``): kept in their partition's delayed set and moved into the
stream when due. None reaches the provider before its due time, each within a second
after it, in conversation order; a worker restart in between loses none."""

from __future__ import annotations

import signal
import time

import redis

from relayq.ops.local_provider import ProviderThread
from relayq.producers import SendRequest, SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    SentLog,
    WorkerPool,
    all_ids,
    check_order,
    delivered_ids,
    wait_until,
)

CONVERSATIONS = 20
PER_CONVERSATION = 3


def delayed_requests() -> list[SendRequest]:
    """Delays from 1.0 to 2.92 s, rising within each conversation (due order = send order)."""
    return [
        SendRequest(
            tenant=f"tenant-{c % 3}",
            conversation=f"c-{c}",
            recipient="+15550100",
            payload={"seq": k},
            delay=1.0 + 0.8 * k + 0.08 * (c % 5),
        )
        for k in range(PER_CONVERSATION)
        for c in range(CONVERSATIONS)
    ]


def send_delayed(settings: Settings) -> tuple[SentLog, dict[str, float]]:
    """Send them; the per-conversation send order and each message id's delay."""
    requests = delayed_requests()
    with SyncProducer(settings) as producer:
        results = producer.send_many(requests)
    sent: SentLog = {}
    delays: dict[str, float] = {}
    for request, result in zip(requests, results, strict=True):
        assert result.ok and result.message_id is not None, result.error
        sent.setdefault((request.tenant, request.conversation), []).append(result.message_id)
        assert request.delay is not None
        delays[result.message_id] = request.delay
    return sent, delays


def lateness(provider: ProviderThread, delays: dict[str, float]) -> dict[str, float]:
    """Seconds from due time (send time + delay) to first arrival, per message id."""
    late: dict[str, float] = {}
    for delivery in provider.deliveries():
        if delivery.message_id in late:
            continue
        due_ms = delivery.created_ms + round(delays[delivery.message_id] * 1000)
        late[delivery.message_id] = delivery.received_ns / 1e9 - due_ms / 1000
    return late


def wait_for_workers(workers: WorkerPool, client: redis.Redis, keys: Keys) -> None:
    """Until every started worker has registered (so all partitions are owned)."""
    wait_until(
        lambda: all(w.worker_id(client, keys) for w in workers.processes if w.alive()),
        timeout=15,
        message="workers registered",
    )


def test_delayed_messages_arrive_within_a_second_of_due_and_never_early(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=30)  # timeouts on a starved machine: retried
    provider = make_provider()
    for _ in range(2):
        workers.start(provider.url, settings=settings)
    wait_for_workers(workers, redis_client, keys)
    sent, delays = send_delayed(settings)
    time.sleep(0.5)
    assert provider.deliveries() == [], "nothing is due yet"

    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent),
        timeout=15,
        message="every delayed message delivered",
        interval=0.1,
    )
    late = lateness(provider, delays)
    print(f"lateness: min {min(late.values()):.3f}s max {max(late.values()):.3f}s")
    early = {mid: round(s, 3) for mid, s in late.items() if s < 0}
    assert early == {}, "delivered before due"
    assert max(late.values()) < 1.0
    result = check_order(sent, provider.deliveries())
    assert result.delivered == all_ids(sent) and result.unexpected == []
    assert result.violations == [], result.violations[:10]


def test_a_worker_restart_while_messages_wait_loses_none(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=30)
    provider = make_provider()
    first = [workers.start(provider.url, settings=settings) for _ in range(2)]
    wait_for_workers(workers, redis_client, keys)
    sent, delays = send_delayed(settings)

    # Restart one worker while most messages still wait: SIGTERM (graceful: its
    # partitions are released), and a new worker starts.
    wait_until(
        lambda: len(delivered_ids(provider)) >= 5,
        timeout=10,
        message="the first delayed messages delivered",
        interval=0.02,
    )
    first[0].send_signal(signal.SIGTERM)
    workers.start(provider.url, settings=settings)
    assert first[0].wait(15) == 0
    assert len(delivered_ids(provider)) < len(all_ids(sent)) / 2, "restart came mid-way"

    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent),
        timeout=20,
        message="every delayed message delivered across the restart",
        interval=0.1,
    )
    late = lateness(provider, delays)
    print(f"lateness: min {min(late.values()):.3f}s max {max(late.values()):.3f}s")
    assert {mid: round(s, 3) for mid, s in late.items() if s < 0} == {}, "delivered early"
    # A hand-over may add up to one ownership tick (0.5 s) and one promotion round (0.2 s)
    # for the messages that fall due during it.
    assert max(late.values()) < 1.5
    result = check_order(sent, provider.deliveries())
    assert result.delivered == all_ids(sent) and result.unexpected == []
    assert result.violations == [], result.violations[:10]
