"""``relayq pending``: a SIGKILLed worker's entries are listed with their consumer, idle
time and deliveries; ``--release`` leaves a live owner's entries alone (and a dead one's
while its lease lasts), hands them back once no worker holds the partition, and the next
worker delivers them exactly once."""

from __future__ import annotations

import redis

from relayq.ops.pending_release import RELEASED_CONSUMER
from relayq.streams.keys import GROUP, Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, delivered_ids, pending_total, wait_until
from tests.test_repair_support import cli_json, kill_when_leases_expired, repair_log, send


def test_release_only_where_no_worker_can_be_sending(
    settings: Settings, keys: Keys, redis_client: redis.Redis, make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:  # fmt: skip
    blocking = make_provider(latency=60.0)
    holder = workers.start(blocking.url)
    sent = send(settings, "P", 4) + send(settings, "Q", 2)
    wait_until(lambda: blocking.stats()["requests"] == 6, timeout=30, message="6 in flight")
    holder_id = holder.worker_id(redis_client, keys)

    # The owner is alive and sending: nothing is released.
    live = cli_json(settings, "pending", "--release")
    assert live["release"]["released"] == 0 and live["release"]["held"] == 6
    assert live["report"]["consumers"] == [{"consumer": holder_id, "pending": 6, "live": True}]
    assert pending_total(redis_client, keys, holder_id) == 6

    kill_when_leases_expired(holder, redis_client, keys)
    report = cli_json(settings, "pending", "--tenant", "P", "--min-idle", "1s")
    entries = report["entries"]
    assert sorted(e["message_id"] for e in entries) == sorted(sent[:4])
    assert all(e["consumer"] == holder_id and e["idle_ms"] >= 1000 for e in entries)
    assert all(e["deliveries"] == 1 and not e["partition_leased"] for e in entries)
    assert not any(e["consumer_live"] for e in entries)
    assert sum(p["pending"] for p in report["partitions"]) == 6
    assert cli_json(settings, "pending", "--min-deliveries", "2")["entries"] == []
    assert cli_json(settings, "pending", "--consumer", "nobody")["entries"] == []
    limited = cli_json(settings, "pending", "--limit", "2")
    assert len(limited["entries"]) == 2 and limited["truncated"] is True

    released = cli_json(settings, "pending", "--tenant", "P", "--release")
    assert released["release"] == {"released": 4, "held": 0, "held_partitions": []}
    again = cli_json(settings, "pending", "--tenant", "P", "--release")
    assert again["release"]["released"] == 0
    assert pending_total(redis_client, keys, RELEASED_CONSUMER) == 4
    assert pending_total(redis_client, keys, holder_id) == 2  # Q's: not chosen
    logged = [(e["action"], e["count"]) for e in repair_log(redis_client, keys)]
    assert logged == [("release", "0"), ("release", "4"), ("release", "0")]

    # The next worker takes the partitions and delivers every one of them, once.
    fast = make_provider()
    workers.start(fast.url)
    wait_until(lambda: delivered_ids(fast) == set(sent), timeout=60, message="delivered")
    wait_until(lambda: pending_total(redis_client, keys) == 0, timeout=30, message="acked")
    assert len(fast.deliveries()) == 6
    for partition in range(keys.partitions):
        for stream in keys.streams(partition):
            if redis_client.exists(stream):
                assert redis_client.xpending(stream, GROUP)["pending"] == 0


def test_pending_table_on_an_empty_namespace(settings: Settings) -> None:
    from tests.support import run_cli

    done = run_cli(settings, "pending")
    assert done.returncode == 0, done.stderr
    assert "total pending: 0" in done.stdout
