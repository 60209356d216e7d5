"""Per-channel limits and the global cap, cluster-wide: two workers delivering a mixed
backlog never exceed a channel's rate or its sends in flight at the provider, nor the
global cap; limits changed at run time apply without a restart; a channel with no limits
pays nothing."""

from __future__ import annotations

import json

import redis

from relayq.ops.controls import Controls
from relayq.ops.local_provider import ProviderThread
from relayq.producers.send_request import SendRequest
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, all_ids, check_order, delivered_ids, send_all, wait_until

LIMITS = {"email": {"rate": 10, "cap": 2}, "whatsapp": {"rate": 5, "cap": 3}}
"""Email: the cap binds (2 in flight at 0.5 s each: 4/s, under its rate); WhatsApp: the
rate binds (5/s at 0.5 s each needs 2.5 in flight, under its cap)."""
TENANT_OF = {"email": "mail-tenant", "whatsapp": "chat-tenant"}
"""One tenant per channel, so the provider's per-tenant in-flight marks are per channel."""


def mixed_backlog(per_channel: int) -> list[SendRequest]:
    return [
        SendRequest(
            tenant=TENANT_OF[channel],
            conversation=f"{channel}-{i % 20}",
            recipient=f"{channel}-r{i % 20}",
            payload={"n": i},
            channel=channel,
        )
        for i in range(per_channel)
        for channel in ("email", "whatsapp")
    ]


def most_in_any_second(times_ns: list[int]) -> int:
    """The most requests that arrived within any one second."""
    times = sorted(times_ns)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1_000_000_000:
            start += 1
        most = max(most, end - start + 1)
    return most


def arrivals(provider: ProviderThread, tenant: str) -> list[int]:
    return [a.arrived_ns for a in provider.attempts() if a.tenant == tenant]


def channel_settings(settings: Settings, **changes: object) -> Settings:
    return settings.replace(
        deliverer="channels",
        channels="email=webhook,whatsapp=webhook",
        tenant_cap=0,
        global_rate=0.0,
        max_attempts=30,
        **changes,
    )


def test_two_workers_keep_each_channels_rate_and_cap(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    settings = channel_settings(settings, channel_limits=json.dumps(LIMITS))
    provider = make_provider(latency=0.5)
    sent = send_all(settings, mixed_backlog(30))
    for _ in range(2):
        workers.start(provider.url, settings=settings, RELAYQ_DELIVERER="channels")
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent), timeout=90, message="all delivered"
    )

    stats = provider.stats()
    assert stats["max_tenant_in_flight"]["mail-tenant"] == 2  # the cap binds, and holds
    assert stats["max_tenant_in_flight"]["chat-tenant"] <= 3
    # GCRA with a burst of 1 lets rate + 1 in within a second; +1 for network jitter.
    assert most_in_any_second(arrivals(provider, "chat-tenant")) <= 5 + 2
    assert most_in_any_second(arrivals(provider, "mail-tenant")) <= 10 + 2
    check_order(sent, provider.deliveries())


def test_the_global_cap_holds_over_every_channel_and_worker(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    settings = channel_settings(settings, global_cap=3)
    provider = make_provider(latency=0.2)
    sent = send_all(settings, mixed_backlog(40))
    for _ in range(2):
        workers.start(provider.url, settings=settings, RELAYQ_DELIVERER="channels")
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent), timeout=90, message="all delivered"
    )
    assert provider.stats()["max_in_flight"] == 3


def test_a_channel_cap_set_at_run_time_applies_without_a_restart(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = channel_settings(settings)
    provider = make_provider(latency=0.3)
    controls = Controls(redis_client, keys)
    controls.set_channel_limits("whatsapp", cap=1)
    sent = send_all(settings, [r for r in mixed_backlog(30) if r.channel == "whatsapp"])
    workers.start(provider.url, settings=settings, RELAYQ_DELIVERER="channels")
    wait_until(lambda: len(delivered_ids(provider)) >= 10, timeout=60, message="10 delivered")
    assert provider.stats()["max_tenant_in_flight"]["chat-tenant"] == 1
    controls.clear_channel_limits("whatsapp")
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent), timeout=60, message="all delivered"
    )
    assert provider.stats()["max_tenant_in_flight"]["chat-tenant"] > 1  # lifted: 20 convs
    assert redis_client.zcard(keys.channel_in_flight("whatsapp")) == 0  # every lease back


def test_messages_without_limits_never_touch_the_channel_keys(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = channel_settings(settings)
    provider = make_provider()
    sent = send_all(settings, mixed_backlog(10))
    workers.start(provider.url, settings=settings, RELAYQ_DELIVERER="channels")
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent), timeout=60, message="all delivered"
    )
    flow = [k.decode() for k in redis_client.scan_iter(match=f"{{{keys.namespace}:flow}}:c:*")]
    assert flow == []
