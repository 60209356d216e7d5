"""Fairness at any backlog size: a tenant's backlog waits in its own list per (partition,
level), and workers admit waiting messages into the stream tenant by tenant
(``_admit.lua``, ``admit_and_read.lua``, ``consumers/fair_read.py``).

Checked against real redis-server processes and real worker processes: the admission
rule as Redis holds it, B's ten messages queued behind A's 100,000 delivered within the
first 1,000 sends, a drifted counter that heals, a paused tenant's backlog left unread,
and a namespace filled by the previous layout (everything in the streams) drained in
order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import redis

from relayq.consumers.fair_read import FairRead
from relayq.consumers.pause_state import PauseState
from relayq.ops.controls import Controls
from relayq.producers import SendRequest, SyncProducer
from relayq.streams.codec import decode_entry
from relayq.streams.keys import GROUP, Keys
from relayq.streams.redis_client import create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings
from relayq.streams.stream_groups import ensure_groups
from tests.conftest import ProviderFactory
from tests.previous_release import BEFORE_FAIR_LAYOUT, extract_release, send_with_release
from tests.support import (
    WorkerPool,
    check_order,
    delivered_ids,
    merged_deliveries,
    wait_until,
)

WINDOW = 20
"""read_count in these tests: the unread window a stream takes before messages wait."""


def _one_partition(settings: Settings) -> Settings:
    return settings.replace(partitions=1, read_count=WINDOW, read_ahead=4 * WINDOW)


def _requests(tenant: str, count: int, conversations: int = 10) -> list[SendRequest]:
    return [
        SendRequest(
            tenant=tenant,
            conversation=f"{tenant}-{n % conversations}",
            recipient="+15550100",
            payload={"n": n},
        )
        for n in range(count)
    ]


def _send(settings: Settings, requests: list[SendRequest]) -> list[str]:
    with SyncProducer(settings) as producer:
        results = producer.send_many(requests)
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    return [str(r.message_id) for r in results]


def _read_once(settings: Settings, keys: Keys, pauses: PauseState | None = None) -> Any:
    """One ``admit_and_read`` call as a worker makes it: (tenants read in order, more)."""

    async def main() -> Any:
        client = create_client(settings)
        try:
            await ensure_groups(client, keys.streams(0))
            fair = FairRead(
                client=client,
                scripts=Scripts(client),
                keys=keys,
                consumer="w-test",
                count=WINDOW,
                pauses=pauses or PauseState(),
            )
            batches, more = await fair.read(0, {})
        finally:
            await client.aclose()
        tenants = [decode_entry(fields).tenant for _, entries in batches for _, fields in entries]
        return tenants, more

    return asyncio.run(main())


# -- the admission rule, as Redis holds it ------------------------------------------------


def test_a_backlog_waits_in_its_tenants_list_and_the_next_tenant_gets_a_turn(
    settings: Settings, redis_client: redis.Redis
) -> None:
    settings = _one_partition(settings)
    keys = Keys.from_settings(settings)
    _send(settings, _requests("A", 3 * WINDOW))
    _send(settings, _requests("B", 3))

    stream, ring = keys.stream(0, "normal"), keys.ring(0, "normal")
    assert redis_client.xlen(stream) == WINDOW  # the window, all A's
    assert redis_client.llen(keys.waiting(0, "normal", "A")) == 2 * WINDOW
    assert redis_client.llen(keys.waiting(0, "normal", "B")) == 3  # window full: B waits too
    assert redis_client.lrange(ring, 0, -1) == [b"A", b"B"]

    first, more = _read_once(settings, keys)
    assert first == ["A"] * WINDOW and more  # the window as it was; no room to admit
    second, _ = _read_once(settings, keys)
    # Room for WINDOW: the two tenants take turns, ceil(20 / 2) = 10 each at most.
    assert second.count("B") == 3 and second.count("A") == 10
    assert redis_client.exists(keys.waiting(0, "normal", "B")) == 0  # empty lists go
    assert redis_client.lrange(ring, 0, -1) == [b"A"]


def test_a_message_goes_straight_into_the_stream_while_its_tenant_has_nothing_waiting(
    settings: Settings, redis_client: redis.Redis
) -> None:
    settings = _one_partition(settings)
    keys = Keys.from_settings(settings)
    _send(settings, _requests("A", WINDOW - 1))
    assert redis_client.xlen(keys.stream(0, "normal")) == WINDOW - 1
    assert redis_client.get(keys.unread(0, "normal")) == str(WINDOW - 1).encode()
    assert redis_client.llen(keys.ring(0, "normal")) == 0
    _read_once(settings, keys)
    assert redis_client.exists(keys.unread(0, "normal")) == 0  # drained: the counter is 0


def test_a_paused_tenant_is_not_admitted(settings: Settings, redis_client: redis.Redis) -> None:
    settings = _one_partition(settings)
    keys = Keys.from_settings(settings)
    _send(settings, _requests("A", WINDOW))  # fills the window
    _send(settings, _requests("P", 5))
    _send(settings, _requests("B", 5))
    _read_once(settings, keys)  # reads A's window
    pauses = PauseState()
    pauses.scopes = frozenset({"tenant:P"})
    tenants, _ = _read_once(settings, keys, pauses)
    assert tenants == ["B"] * 5
    assert redis_client.llen(keys.waiting(0, "normal", "P")) == 5


def test_send_many_keeps_a_conversations_order_across_plain_and_deduplicated_messages(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # send_many enqueues runs of plain messages with one script call per (partition,
    # level); a message with a dedup key is its own call, and must not overtake the plain
    # messages sent before it in its conversation (nor fall behind those after it).
    settings = _one_partition(settings)
    keys = Keys.from_settings(settings)
    requests = [
        SendRequest(
            tenant="A",
            conversation="c",
            recipient="+15550100",
            payload={"n": n},
            dedup_key=f"d{n}" if n % 7 == 3 else None,
        )
        for n in range(3 * WINDOW)
    ]
    sent = _send(settings, requests)

    admitted: Any = redis_client.xrange(keys.stream(0, "normal"))
    waiting: Any = redis_client.lrange(keys.waiting(0, "normal", "A"), 0, -1)
    held = [entry for _, entry in admitted] + [{b"m": blob} for blob in waiting]
    assert [decode_entry(fields).id for fields in held] == sent
    assert redis_client.xlen(keys.stream(0, "normal")) == WINDOW  # the window, then the list


# -- real workers -------------------------------------------------------------------------


def test_ten_messages_behind_a_100k_backlog_are_delivered_within_1000_sends(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    backlog = _send(settings, _requests("bulk", 100_000, conversations=5_000))
    small = set(_send(settings, _requests("small", 10, conversations=2)))
    provider = make_provider()
    workers.start(provider.url, settings=settings.replace(concurrency=16))
    wait_until(lambda: small <= delivered_ids(provider), timeout=120, message="small delivered")

    order = [d.message_id for d in merged_deliveries(provider)]
    positions = sorted(order.index(message_id) for message_id in small)
    assert positions[-1] < 1_000, positions
    assert len(set(backlog) & set(order)) >= positions[-1] - len(small)
    workers.kill_all()
    # Worker memory is bounded by read_ahead, not by the backlog: beyond what was
    # delivered, at most read_ahead entries per partition (and a window per stream) were
    # read; the rest still waits in the lists.
    delivered = len(delivered_ids(provider))
    waiting = sum(
        redis_client.llen(keys.waiting(p, "normal", "bulk")) for p in range(keys.partitions)
    )
    read_at_most = keys.partitions * (settings.read_ahead + settings.read_count)
    assert waiting >= 100_000 - delivered - read_at_most, (waiting, delivered)


def test_a_drifted_unread_counter_does_not_stall_delivery(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # As if a worker had died between a blocking read and its next call, many times over:
    # the counters say the windows are full, so every message waits in its tenant's list.
    for partition in range(keys.partitions):
        redis_client.set(keys.unread(partition, "normal"), 10**9)
    sent = _send(settings, _requests("acme", 300))
    assert sum(redis_client.xlen(s) for p in range(8) for s in keys.streams(p)) == 0
    provider = make_provider()
    workers.start(provider.url, settings=settings)
    wait_until(lambda: delivered_ids(provider) == set(sent), timeout=30, message="all delivered")


def test_a_namespace_filled_by_the_previous_release_drains_in_order(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    tmp_path: Path,
) -> None:
    # The previous release put every message straight into its level's stream (no
    # waiting lists, no unread counters): 600 sent by it, then 600 more sent now, over
    # the same conversations, drain in send order per conversation.
    tree = extract_release(BEFORE_FAIR_LAYOUT, tmp_path / "previous")
    old = _requests("legacy", 600, conversations=30)
    new = _requests("legacy", 600, conversations=30)
    old_ids = send_with_release(tree, settings, [_fields(r) for r in old])
    assert sum(redis_client.xlen(s) for p in range(8) for s in keys.streams(p)) == 600
    new_ids = _send(settings, new)
    sent: dict[tuple[str, str], list[str]] = {}
    for request, message_id in zip(old + new, old_ids + new_ids, strict=True):
        sent.setdefault((request.tenant, request.conversation), []).append(message_id)

    provider = make_provider()
    workers.start(provider.url, settings=settings)
    wait_until(lambda: len(delivered_ids(provider)) == 1200, timeout=60, message="drained")
    result = check_order(sent, merged_deliveries(provider))
    assert result.violations == [] and result.unexpected == []
    for partition in range(keys.partitions):
        pending: Any = redis_client.xpending(keys.stream(partition, "normal"), GROUP)
        assert pending["pending"] == 0


def _fields(request: SendRequest) -> dict[str, Any]:
    return {
        "tenant": request.tenant,
        "conversation": request.conversation,
        "recipient": request.recipient,
        "payload": request.payload,
    }


def test_pausing_a_tenant_leaves_its_waiting_backlog_unread(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    Controls(redis_client, keys).pause(tenant="paused")
    held = _send(settings, _requests("paused", 5_000, conversations=100))
    others = set(_send(settings, _requests("other", 50)))
    provider = make_provider()
    workers.start(provider.url, settings=settings)
    wait_until(lambda: others <= delivered_ids(provider), timeout=30, message="others delivered")
    assert delivered_ids(provider).isdisjoint(held)
    waiting = sum(
        redis_client.llen(keys.waiting(p, "normal", "paused")) for p in range(keys.partitions)
    )
    # Only what was admitted before the backlog built up (one window per stream) was read.
    assert waiting >= len(held) - keys.partitions * settings.read_count


def test_a_burst_worker_stays_until_the_waiting_lists_are_empty(
    settings: Settings,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # A paused tenant's messages wait in its list, unread: the namespace is not drained,
    # so a burst worker stays (as it did when they sat unread in the stream) until resumed.
    settings = _one_partition(settings)
    keys = Keys.from_settings(settings)
    sent = set(_send(settings, _requests("acme", 2 * WINDOW)))
    controls = Controls(redis_client, keys)
    controls.pause(tenant="held")
    held = set(_send(settings, _requests("held", 5)))
    assert redis_client.llen(keys.waiting(0, "normal", "held")) == 5
    provider = make_provider()
    worker = workers.start(provider.url, burst=True, settings=settings)
    wait_until(lambda: sent <= delivered_ids(provider), timeout=30, message="acme delivered")
    time.sleep(2.0)  # ten burst checks (0.2 s apart) with only the paused tenant left
    assert worker.alive()
    controls.resume(tenant="held")
    assert worker.wait(timeout=30) == 0
    assert delivered_ids(provider) == sent | held
