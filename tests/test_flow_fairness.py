"""Fairness between tenants of one priority: a tenant with a large backlog does not starve
a tenant with a few messages queued behind it. Tenants take turns for the lanes, so B's
20 messages, sent after A's 5,000, are all delivered before A has had 10% (500) of its
backlog delivered."""

from __future__ import annotations

from relayq.producers import SendRequest
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    all_ids,
    check_order,
    delivered_ids,
    merge_sent,
    send_all,
    wait_until,
)


def requests(tenant: str, conversations: int, per_conversation: int) -> list[SendRequest]:
    return [
        SendRequest(
            tenant=tenant,
            conversation=f"{tenant}-{c}",
            recipient=f"+1555{c:05d}",
            payload={"seq": i},
        )
        for i in range(per_conversation)
        for c in range(conversations)
    ]


def test_a_small_tenant_is_not_starved_by_a_large_backlog(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    # No tenant cap: a cap alone would keep A to a few lanes and let B through even if
    # the lanes served conversations first come, first served. Without one, only the
    # turn-taking between tenants can get B out early: first come, first served would put
    # B's conversations behind all 2,500 of A's (each with a message ready).
    # A few lanes and a little provider latency keep the worker busy the whole time.
    settings = settings.replace(tenant_cap=0, global_rate=0.0, concurrency=8)
    provider = make_provider(latency=0.02)
    sent_a = send_all(settings, requests("A", 2500, 2))  # 5,000 queued first
    sent_b = send_all(settings, requests("B", 10, 2))  # then 20 in 10 conversations
    ids_a, ids_b = all_ids(sent_a), all_ids(sent_b)
    workers.start(provider.url, settings=settings)

    wait_until(
        lambda: delivered_ids(provider) >= ids_b,
        timeout=30,
        message="all of B's messages delivered",
        interval=0.1,
    )
    deliveries = provider.deliveries()
    last_b = max(i for i, d in enumerate(deliveries) if d.message_id in ids_b)
    a_before = len({d.message_id for d in deliveries[:last_b] if d.message_id in ids_a})
    print(f"A delivered before B's last: {a_before}")
    assert a_before < 500, f"{a_before} of A's messages went before B's last one"

    result = check_order(merge_sent(sent_a, sent_b), deliveries)
    assert result.unexpected == []
    assert result.violations == [], result.violations[:10]
