"""``relayq empty``: a tenant's waiting messages — in its waiting lists and in the
streams' unread windows — go exactly, in one step per partition; another tenant's stay and
are delivered in order afterwards; in-flight messages are untouched; a second run removes
nothing; without --yes nothing is removed and the command exits 2."""

from __future__ import annotations

from typing import Any

import redis

from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, delivered_ids, pending_message_ids, wait_until
from tests.test_repair_support import (
    cli_json,
    kill_when_leases_expired,
    repair_log,
    send,
    unread_message_ids,
)


def _waiting_in_lists(client: redis.Redis, keys: Keys, level: str, tenant: str) -> int:
    return int(client.llen(keys.waiting(0, level, tenant)))


def test_empty_removes_exactly_one_tenants_waiting_messages(
    settings: Settings, redis_client: redis.Redis, make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:  # fmt: skip
    settings = settings.replace(partitions=1, read_count=10)
    keys = Keys.from_settings(settings)
    # In flight: X's three sends held by a provider that blocks, their worker killed.
    blocking = make_provider(latency=60.0)
    holder = workers.start(blocking.url, settings=settings)
    in_flight = send(settings, "X", 3)
    wait_until(lambda: blocking.stats()["requests"] == 3, timeout=30, message="X in flight")
    holder_id = holder.worker_id(redis_client, keys)
    assert holder_id is not None
    kill_when_leases_expired(holder, redis_client, keys)
    # Waiting, nobody reading: Y in the stream window first, then X's 30 (4 high, 26
    # normal: the window takes some, the rest waits in X's lists), then more of Y.
    y_ids = send(settings, "Y", 3, conversation="y")
    x_ids = send(settings, "X", 4, priority="high") + send(settings, "X", 26)
    y_ids += send(settings, "Y", 12, conversation="y")
    normal, high = keys.stream(0, "normal"), keys.stream(0, "high")
    x_in_window = [m for t, m in unread_message_ids(redis_client, normal) if t == "X"]
    x_in_lists = _waiting_in_lists(redis_client, keys, "normal", "X")
    assert x_in_window and x_in_lists and len(x_in_window) + x_in_lists == 26
    assert [m for _, m in unread_message_ids(redis_client, high)] == x_ids[:4]
    y_records: Any = redis_client.hmget(keys.outcomes(0), y_ids)
    unread_before = int(redis_client.get(keys.unread(0, "normal")) or 0)

    dry = cli_json(settings, "empty", "--tenant", "X", code=2)
    assert dry["dry_run"] is True
    assert {(r["priority"], r["from_lists"], r["from_streams"]) for r in dry["rows"]} == {
        ("high", 0, 4), ("normal", x_in_lists, len(x_in_window)),
    }  # fmt: skip
    assert _waiting_in_lists(redis_client, keys, "normal", "X") == x_in_lists  # nothing gone

    done = cli_json(settings, "empty", "--tenant", "X", "--yes")
    assert done["dry_run"] is False
    rows = {(r["priority"], r["tenant"], r["from_lists"], r["from_streams"]) for r in done["rows"]}
    assert rows == {("high", "X", 0, 4), ("normal", "X", x_in_lists, len(x_in_window))}
    assert sum(r["from_lists"] + r["from_streams"] for r in done["rows"]) == 30
    # Gone: X's lists, ring entries, window entries and outcome records.
    assert not redis_client.exists(keys.waiting(0, "normal", "X"))
    assert b"X" not in redis_client.lrange(keys.ring(0, "normal"), 0, -1)
    assert [t for t, _ in unread_message_ids(redis_client, normal)] == ["Y"] * 3
    assert unread_message_ids(redis_client, high) == []
    assert redis_client.hmget(keys.outcomes(0), x_ids) == [None] * 30
    assert int(redis_client.get(keys.unread(0, "normal")) or 0) == unread_before - len(x_in_window)
    # Untouched: Y's messages and records, X's in-flight entries.
    assert redis_client.hmget(keys.outcomes(0), y_ids) == y_records
    assert _waiting_in_lists(redis_client, keys, "normal", "Y") == 12
    assert pending_message_ids(redis_client, keys, holder_id) == set(in_flight)

    again = cli_json(settings, "empty", "--tenant", "X", "--yes")
    assert again["rows"] == [] and again["records_deleted"] == 0
    logged = [(e["action"], e["scope"], e["count"]) for e in repair_log(redis_client, keys)]
    assert logged == [("empty", "tenant=X", "30"), ("empty", "tenant=X", "0")]

    # Y is delivered in order, X's in-flight three too (reclaimed); no removed X message.
    fast = make_provider()
    workers.start(fast.url, settings=settings)
    wait_until(lambda: len(delivered_ids(fast)) == 18, timeout=60, message="Y and X's 3")
    order = [d.message_id for d in fast.deliveries() if d.tenant == "Y"]
    assert order == y_ids
    assert delivered_ids(fast) == set(y_ids) | set(in_flight)


def test_empty_all_of_one_priority(settings: Settings, redis_client: redis.Redis) -> None:
    settings = settings.replace(partitions=2, read_count=5)
    keys = Keys.from_settings(settings)
    send(settings, "A", 8, priority="low")
    send(settings, "B", 7, priority="low")
    kept = send(settings, "A", 2)
    done = cli_json(settings, "empty", "--all", "--priority", "low", "--yes")
    assert {r["tenant"]: r["from_lists"] + r["from_streams"] for r in done["rows"]} == {
        "A": 8, "B": 7,
    }  # fmt: skip
    assert all(r["priority"] == "low" for r in done["rows"])
    left = [
        m for p in range(2) for _, m in unread_message_ids(redis_client, keys.stream(p, "normal"))
    ]
    assert sorted(left) == sorted(kept)
    assert not any(redis_client.exists(keys.ring(p, "low")) for p in range(2))
