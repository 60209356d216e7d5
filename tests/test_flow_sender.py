"""Per-sender limits: a sender's rate holds across workers and tenants while other senders
go at full speed, and a provider's throttling of one sender pauses only that sender."""

from __future__ import annotations

import asyncio
import bisect

import redis

from relayq.consumers.admission import Admission
from relayq.ops.controls import Controls
from relayq.producers import SendRequest
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    admission_envelope,
    all_ids,
    check_order,
    delivered_ids,
    send_all,
    wait_until,
)

SLOW, FAST = "+15550001", "+15550002"
RATE, BURST = 20.0, 2
PER_SENDER = 60
TRANSIT = 0.4  # what the provider's clock adds on a loaded box (see test_flow_global_rate)


def requests() -> list[SendRequest]:
    """60 messages from each sender, spread over 3 tenants and 30 conversations."""
    return [
        SendRequest(
            tenant=f"tenant-{c % 3}",
            conversation=f"{sender}-{c}",
            recipient=f"+1666{c:04d}",
            sender=sender,
            payload={"i": i},
        )
        for i in range(PER_SENDER // 30)
        for c in range(30)
        for sender in (SLOW, FAST)
    ]


def busiest_second(times_ns: list[int]) -> int:
    return max(
        bisect.bisect_left(times_ns, start + 1_000_000_000) - i for i, start in enumerate(times_ns)
    )


def test_sender_rate_holds_across_workers_and_leaves_other_senders_alone(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(tenant_cap=0, global_rate=0, sender_rate=0, max_attempts=30)
    Controls(redis_client, keys).set_sender_limits(SLOW, rate=RATE, burst=BURST)
    provider = make_provider()
    reqs = requests()
    sent = send_all(settings, reqs)
    ids_by_sender: dict[str, set[str]] = {SLOW: set(), FAST: set()}
    for request, ids in zip(reqs, [sent[(r.tenant, r.conversation)] for r in reqs], strict=True):
        ids_by_sender[request.sender or ""].update(ids)
    # A run-time limit on one sender turns admission on only if something is on by
    # default; sender_rate=0 with everything else off would skip admission entirely.
    settings = settings.replace(sender_rate=1_000_000.0, sender_burst=1_000_000)
    for _ in range(2):
        workers.start(provider.url, settings=settings)

    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent),
        timeout=30,
        message="everything delivered",
        interval=0.2,
    )
    result = check_order(sent, provider.deliveries())
    assert result.violations == [], result.violations[:10]
    first: dict[str, int] = {}
    for delivery in provider.deliveries():
        first.setdefault(delivery.message_id, delivery.received_ns)
    slow = sorted(t for m, t in first.items() if m in ids_by_sender[SLOW])
    fast = sorted(t for m, t in first.items() if m in ids_by_sender[FAST])
    assert len(slow) == len(fast) == PER_SENDER
    # GCRA: n sends need (n - burst) / rate seconds, and no second holds much more than
    # rate + burst (plus the token hold, budget.TOKEN_LIFETIME, and transit jitter).
    span = (slow[-1] - slow[0]) / 1e9
    assert span >= (PER_SENDER - BURST) / RATE - TRANSIT, span
    peak = busiest_second(slow)
    assert peak <= RATE * (1 + TRANSIT) + 2 * BURST, peak
    # The other sender was not held back by the slow one: all of it was delivered while
    # the slow sender had not done half of its messages.
    assert fast[-1] < slow[PER_SENDER // 2], "the fast sender waited for the slow one"


def test_provider_throttling_of_a_sender_pauses_only_that_sender(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    settings = settings.replace(tenant_cap=5, global_rate=0)

    async def scenario() -> None:
        client = create_client(settings)
        try:
            admission = Admission(client, Scripts(client), keys, settings, "w1")
            task = asyncio.create_task(admission.run())
            await admission.pause_for(admission_envelope(sender=SLOW).message, 2.0)
            # The throttled sender's pause is in Redis for every worker; the tenant's not.
            assert 0 < int(redis_client.pttl(keys.sender_pause(SLOW))) <= 2000
            assert not redis_client.exists(keys.tenant_pause("t1"))
            refused = await admission.admit(admission_envelope(sender=SLOW))
            assert refused is not None and refused.reason == "paused"
            assert 1.0 < (refused.wait or 0) <= 2.0
            # Same tenant, other sender, and no sender at all: admitted at once.
            assert await admission.admit(admission_envelope(sender=FAST)) is None
            assert await admission.admit(admission_envelope(sender=None)) is None
            # Another worker (no local memory of the 429) sees the pause through Redis.
            other = Admission(client, Scripts(client), keys, settings, "w2")
            other_task = asyncio.create_task(other.run())
            refused = await other.admit(admission_envelope(sender=SLOW))
            assert refused is not None and refused.reason == "paused"
            task.cancel()
            other_task.cancel()
        finally:
            await client.aclose()

    asyncio.run(scenario())
