"""Pause and resume (ops/controls.py, ``relayq pause|resume``): for one tenant, one priority
or the whole namespace, workers stop starting sends for what is paused within a second
(sends in flight finish), everything else goes on, nothing is lost, and after resume
every conversation continues in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from relayq.ops.controls import Controls
from relayq.ops.local_provider import Delivery
from relayq.producers import SendRequest
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    SentLog,
    WorkerPool,
    all_ids,
    check_order,
    dead_letters,
    delivered_ids,
    merge_sent,
    pending_total,
    run_cli,
    send_all,
    wait_until,
)

CONVERSATIONS = 20
PER_CONVERSATION = 8
LATENCY = 0.05
STOPS_WITHIN = 1.0
"""A pause is seen at the workers' next ownership tick (<= 0.5 s); sends already in flight
(50 ms here) finish. Nothing paused may start later than this after the pause."""
OBSERVE = 1.0
"""How long past STOPS_WITHIN the test watches that nothing paused is delivered."""


def requests(tenant: str, priority: str = "normal") -> list[SendRequest]:
    return [
        SendRequest(
            tenant=tenant,
            conversation=f"{tenant}-{priority}-{c}",
            recipient="+15550100",
            payload={"seq": i},
            priority=priority,
        )
        for i in range(PER_CONVERSATION)
        for c in range(CONVERSATIONS)
    ]


def pause_and_resume(
    *,
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    sent: SentLog,
    scope: dict[str, Any],
    paused: Callable[[str, str], bool],
) -> None:
    """Deliver ``sent`` with two workers, pause ``scope`` mid-way (``paused(tenant,
    conversation)`` says what it covers), watch, resume, check."""
    # Two lanes per worker at 50 ms a send: ~80 deliveries/s, so the pause comes mid-way.
    settings = settings.replace(concurrency=2, max_attempts=30)
    provider = make_provider(latency=LATENCY)
    controls = Controls(redis_client, keys)
    expected = all_ids(sent)
    covered = {mid for key, ids in sent.items() if paused(*key) for mid in ids}

    def is_paused(delivery: Delivery) -> bool:
        return delivery.message_id in covered

    for _ in range(2):
        workers.start(provider.url, settings=settings)
    wait_until(
        lambda: sum(map(is_paused, provider.deliveries())) >= 10,
        timeout=20,
        message="what will be paused is being delivered",
        interval=0.02,
    )
    paused_at = time.time_ns()
    controls.pause(**scope)
    time.sleep(STOPS_WITHIN + OBSERVE)
    during = provider.deliveries()
    controls.resume(**scope)

    assert covered - {d.message_id for d in during}, "the pause came while paused work remained"
    cut = paused_at + int(STOPS_WITHIN * 1e9)
    late = [d for d in during if is_paused(d) and d.received_ns > cut]
    assert late == [], f"{len(late)} paused deliveries more than {STOPS_WITHIN}s after the pause"
    if covered != expected:  # the rest went on meanwhile
        others = [d for d in during if not is_paused(d) and d.received_ns > cut]
        assert len(others) >= 20, f"only {len(others)} other deliveries during the pause"

    wait_until(
        lambda: delivered_ids(provider) >= expected,
        timeout=30,
        message="everything delivered after resume",
        interval=0.1,
    )
    result = check_order(sent, provider.deliveries())
    assert result.delivered == expected and result.unexpected == []
    assert result.violations == [], result.violations[:10]
    wait_until(
        lambda: pending_total(redis_client, keys) == 0,
        timeout=10,
        message="every entry acknowledged",
    )
    assert dead_letters(redis_client, keys) == []
    assert controls.paused() == []


def test_pausing_one_tenant_stops_only_that_tenant(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    sent = merge_sent(send_all(settings, requests("A")), send_all(settings, requests("B")))
    pause_and_resume(
        settings=settings,
        keys=keys,
        redis_client=redis_client,
        make_provider=make_provider,
        workers=workers,
        sent=sent,
        scope={"tenant": "A"},
        paused=lambda tenant, _conversation: tenant == "A",
    )


def test_pausing_the_namespace_stops_everything(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    sent = merge_sent(send_all(settings, requests("A")), send_all(settings, requests("B")[:40]))
    pause_and_resume(
        settings=settings,
        keys=keys,
        redis_client=redis_client,
        make_provider=make_provider,
        workers=workers,
        sent=sent,
        scope={},
        paused=lambda _tenant, _conversation: True,
    )


def test_pausing_a_priority_lets_the_lower_one_through(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # High goes first whenever it has work; with high paused, normal gets the lanes.
    sent = merge_sent(
        send_all(settings, requests("A", "high")), send_all(settings, requests("A", "normal"))
    )
    pause_and_resume(
        settings=settings,
        keys=keys,
        redis_client=redis_client,
        make_provider=make_provider,
        workers=workers,
        sent=sent,
        scope={"priority": "high"},
        paused=lambda _tenant, conversation: "-high-" in conversation,
    )


def test_cli_pauses_and_resumes_and_rejects_bad_input(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    controls = Controls(redis_client, keys)
    done = run_cli(settings, "pause", "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    assert "paused tenant:acme" in done.stdout
    assert controls.paused() == ["tenant:acme"]
    done = run_cli(settings, "resume", "--tenant", "acme")
    assert done.returncode == 0 and "resumed" in done.stdout, done.stderr
    assert controls.paused() == []

    done = run_cli(settings, "pause", "--priority", "urgent")
    assert done.returncode == 2
    assert "invalid priority: 'urgent' is not a level; levels are high, normal, low" in done.stderr
    done = run_cli(settings, "limits", "--tenant", "acme", "--cap", "-1")
    assert done.returncode == 2, done.stdout
    assert "invalid cap" in done.stderr and ">= 0" in done.stderr, done.stderr
    assert controls.paused() == []
    assert redis_client.exists(keys.tenant_limits("acme")) == 0
