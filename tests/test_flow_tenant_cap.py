"""Per-tenant in-flight cap, cluster-wide: never more than N sends of one tenant in flight
across all worker processes (as the provider sees them), the slots of a worker killed
mid-send come back by themselves after ``slot_ttl``, and the cap can be changed at run
time without restarting anything."""

from __future__ import annotations

import signal
import time
from typing import Any

import redis

from relayq.ops.controls import Controls
from relayq.ops.local_provider import ProviderThread
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    WorkerProcess,
    all_ids,
    check_order,
    conversation_requests,
    delivered_ids,
    send_all,
    wait_until,
)

TENANT = "tenant-0"  # conversation_requests(..., tenants=1) sends as this one tenant
LATENCY = 0.05


def slot_leases(client: redis.Redis, keys: Keys) -> dict[str, tuple[int, float]]:
    """The tenant's slot leases: worker id -> (slots held, lease expiry Unix ms)."""
    held: Any = client.hgetall(keys.tenant_leases(TENANT))
    rows: Any = client.zrange(keys.tenant_lease_expiry(TENANT), 0, -1, withscores=True)
    expiry = {member.decode(): score for member, score in rows}
    return {
        field.decode()[2:]: (int(count), expiry.get(field.decode()[2:], 0.0))
        for field, count in held.items()
        if field.startswith(b"h:")
    }


def slots_held(client: redis.Redis, keys: Keys) -> int:
    return sum(count for count, _ in slot_leases(client, keys).values())


def delivery_span(provider: ProviderThread, after_ns: int = 0) -> tuple[int, float]:
    """How many first deliveries came after ``after_ns``, and the seconds they spanned."""
    seen: set[str] = set()
    times: list[int] = []
    for delivery in provider.deliveries():
        if delivery.message_id not in seen:
            seen.add(delivery.message_id)
            if delivery.received_ns > after_ns:
                times.append(delivery.received_ns)
    return len(times), (times[-1] - times[0]) / 1e9 if times else 0.0


def test_three_workers_never_exceed_the_tenant_cap(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # max_attempts: a send timing out on a starved machine is retried, not dead-lettered.
    settings = settings.replace(tenant_cap=5, max_attempts=30)
    provider = make_provider(latency=LATENCY)
    sent = send_all(settings, conversation_requests(100, 5, tenants=1))
    expected = all_ids(sent)
    assert len(expected) == 500
    for _ in range(3):
        workers.start(provider.url, settings=settings)

    wait_until(
        lambda: delivered_ids(provider) >= expected,
        timeout=60,
        message="all 500 messages delivered",
        interval=0.2,
    )
    result = check_order(sent, provider.deliveries())
    assert result.delivered == expected and result.unexpected == []
    assert result.violations == [], result.violations[:10]

    peak = provider.stats()["max_tenant_in_flight"][TENANT]
    print(f"peak concurrent requests of {TENANT}: {peak}")
    assert peak <= 5
    # The cap, not a lack of demand, was what held the three workers back (192 lanes).
    assert peak == 5
    # Corroboration from the clock: with <= 5 requests of 50 ms at a time, 500 first
    # deliveries need at least (500 / 5 - 1) x 50 ms.
    count, span = delivery_span(provider)
    assert span >= 0.9 * (count / 5 - 1) * LATENCY, (count, span)
    # Every slot was given back.
    wait_until(
        lambda: not slot_leases(redis_client, keys),
        timeout=2,
        message="every slot lease given back once everything is delivered",
    )


def test_slots_of_a_killed_worker_come_back_by_themselves(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # max_attempts: a send timing out on a starved machine is retried, not dead-lettered.
    settings = settings.replace(tenant_cap=5, max_attempts=30)
    slot_ttl = settings.slot_ttl  # 2 x send_timeout + 1 = 2.6 s here
    provider = make_provider(latency=LATENCY)
    sent = send_all(settings, conversation_requests(40, 5, tenants=1))
    expected = all_ids(sent)
    running = [workers.start(provider.url, settings=settings) for _ in range(3)]

    # Freeze a worker that holds slots right now, read what it holds, then kill -9 it.
    victim: WorkerProcess | None = None
    leaked = 0
    deadline = time.monotonic() + 30
    while victim is None:
        assert time.monotonic() < deadline, "no worker was seen holding a slot"
        for worker in running:
            worker_id = worker.worker_id(redis_client, keys)
            if worker_id is None or not slot_leases(redis_client, keys).get(worker_id):
                continue
            worker.send_signal(signal.SIGSTOP)
            stopped_ms = time.time() * 1000
            leaked, expiry = slot_leases(redis_client, keys).get(worker_id, (0, 0.0))
            if leaked:
                victim = worker
                break
            worker.send_signal(signal.SIGCONT)  # released it in between: try again
        time.sleep(0.02)
    victim.process.kill()
    assert victim.wait(10) == -signal.SIGKILL
    running.remove(victim)
    assert len(delivered_ids(provider)) < len(expected), "the kill came mid-run"
    print(f"leaked slots: {leaked}")
    # A lease expires slot_ttl after its last renewal, which came before the freeze.
    assert expiry <= stopped_ms + slot_ttl * 1000 + 50

    wait_until(
        lambda: worker_id not in slot_leases(redis_client, keys),
        timeout=slot_ttl + 3,
        message="the killed worker's slots freed after slot_ttl",
    )
    # From now on the surviving workers have every slot again: with fewer than 5 - leaked
    # the leak would still be there.
    provider.reset_stats()
    before = len(delivered_ids(provider))
    wait_until(
        lambda: delivered_ids(provider) >= expected,
        timeout=40,
        message="the surviving workers deliver everything",
        interval=0.2,
    )
    assert len(expected) - before >= 40, "enough was left to see the slots in use again"
    peak_after = provider.stats()["max_tenant_in_flight"][TENANT]
    assert 5 - leaked < peak_after <= 5, (leaked, peak_after)

    result = check_order(sent, provider.deliveries())
    assert result.delivered == expected and result.unexpected == []
    assert result.violations == [], result.violations[:10]
    assert all(w.alive() for w in running)
    wait_until(
        lambda: not slot_leases(redis_client, keys),
        timeout=2,
        message="every slot lease given back once everything is delivered",
    )


def test_cap_lowered_at_run_time_holds_from_then_on(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # max_attempts: a send timing out on a starved machine is retried, not dead-lettered.
    settings = settings.replace(tenant_cap=5, max_attempts=30)
    provider = make_provider(latency=LATENCY)
    sent = send_all(settings, conversation_requests(50, 3, tenants=1))
    expected = all_ids(sent)
    for _ in range(3):
        workers.start(provider.url, settings=settings)
    wait_until(
        lambda: len(delivered_ids(provider)) >= 30,
        timeout=30,
        message="deliveries under the default cap under way",
    )
    assert provider.stats()["max_tenant_in_flight"][TENANT] == 5

    Controls(redis_client, keys).set_tenant_limits(TENANT, cap=2)
    # Sends admitted under the old cap finish and give their slots back; from the moment
    # at most 2 are held, no more than 2 may be in flight.
    wait_until(
        lambda: slots_held(redis_client, keys) <= 2,
        timeout=5,
        message="slots held drop to the new cap",
        interval=0.01,
    )
    provider.reset_stats()
    reset_ns = time.time_ns()
    remaining = len(expected) - len(delivered_ids(provider))
    assert remaining >= 60, "enough left to deliver under the new cap"

    wait_until(
        lambda: delivered_ids(provider) >= expected,
        timeout=40,
        message="everything delivered under the lowered cap",
        interval=0.2,
    )
    peak = provider.stats()["max_tenant_in_flight"][TENANT]
    assert peak == 2, peak  # never above the new cap; and the cap is what limits
    count, span = delivery_span(provider, after_ns=reset_ns)
    assert span >= 0.9 * (count / 2 - 1) * LATENCY, (count, span)
    result = check_order(sent, provider.deliveries())
    assert result.delivered == expected and result.unexpected == []
    assert result.violations == [], result.violations[:10]
    assert all(w.alive() for w in workers.processes)
