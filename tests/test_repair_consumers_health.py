"""``relayq consumers`` lists every consumer; ``consumers prune`` deletes only those with
nothing pending that belong to no live worker. ``relayq health`` exits 0 with a live
worker, 1 naming the failed check otherwise (no worker, Redis down, wrong shape, a message
waiting too long). ``relayq drain`` returns once everything is delivered, 1 on timeout."""

from __future__ import annotations

import time
from typing import Any

import redis

from relayq.streams.keys import GROUP, Keys
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, delivered_ids, run_cli, wait_until
from tests.test_repair_support import cli_json, repair_log, send


def _consumer_names(client: redis.Redis, stream: str) -> set[str]:
    consumers: Any = client.xinfo_consumers(stream, GROUP)
    return {c["name"].decode() for c in consumers}


def test_prune_keeps_consumers_with_pending_entries_and_live_workers(
    settings: Settings, redis_client: redis.Redis
) -> None:
    settings = settings.replace(partitions=1)
    keys = Keys.from_settings(settings)
    stream = keys.stream(0, "normal")
    send(settings, "T", 3)
    redis_client.xgroup_create(stream, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "dead-holder", {stream: ">"}, count=1)
    for name in ("dead-empty", "live-one"):
        read: Any = redis_client.xreadgroup(GROUP, name, {stream: ">"}, count=1)
        redis_client.xack(stream, GROUP, read[0][1][0][0])
    seconds, _ = redis_client.time()
    redis_client.zadd(keys.workers, {"live-one": (seconds + 60) * 1000})

    listed = {c["consumer"]: (c["pending"], c["live"]) for c in cli_json(settings, "consumers")}
    assert listed == {"dead-holder": (1, False), "dead-empty": (0, False), "live-one": (0, True)}
    assert cli_json(settings, "consumers", "prune")["removed"] == []  # idle < 1h
    time.sleep(0.05)
    pruned = cli_json(settings, "consumers", "prune", "--idle", "10ms")
    assert [c["consumer"] for c in pruned["removed"]] == ["dead-empty"]
    assert pruned["kept"] == 2
    assert _consumer_names(redis_client, stream) == {"dead-holder", "live-one"}
    assert cli_json(settings, "consumers", "prune", "--idle", "0s")["removed"] == []
    logged = [(e["action"], e["count"]) for e in repair_log(redis_client, keys)]
    assert logged == [("prune", "0"), ("prune", "1"), ("prune", "0")]


def _failed(health: dict[str, Any]) -> list[str]:
    return [check["name"] for check in health["checks"] if not check["ok"]]


def test_health_exit_codes(
    settings: Settings, own_settings: Settings, own_redis: RedisServer,
    make_provider: ProviderFactory, workers: WorkerPool,
) -> None:  # fmt: skip
    no_worker = cli_json(settings, "health", code=1)
    assert no_worker["healthy"] is False and _failed(no_worker) == ["workers"]
    table = run_cli(settings, "health")
    assert table.returncode == 1 and "unhealthy: workers" in table.stdout

    workers.start(make_provider().url)
    wait_until(lambda: run_cli(settings, "health").returncode == 0, timeout=30, message="healthy")
    assert cli_json(settings, "health")["healthy"] is True
    wrong_shape = cli_json(settings.replace(partitions=3), "health", code=1)
    assert _failed(wrong_shape) == ["namespace"]

    own_redis.stop()
    down = cli_json(own_settings, "health", code=1)
    assert _failed(down) == ["redis"]
    assert str(own_redis.port) in down["checks"][0]["detail"]


def test_health_oldest_waiting_threshold(settings: Settings) -> None:
    send(settings, "W", 1)
    time.sleep(1.2)
    late = cli_json(settings, "health", "--max-oldest-waiting", "1s", code=1)
    assert set(_failed(late)) == {"workers", "oldest_waiting"}
    assert "oldest_waiting" not in _failed(
        cli_json(settings, "health", "--max-oldest-waiting", "1h", code=1)
    )


def test_drain_returns_when_done_and_fails_on_timeout(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    sent = send(settings, "D", 20)
    late = cli_json(settings, "drain", "--timeout", "1s", code=1)
    assert late["drained"] is False and late["remaining"] == 20
    provider = make_provider(latency=0.05)
    workers.start(provider.url)
    done = cli_json(settings, "drain", "--timeout", "25s")
    assert done == {"drained": True, "remaining": 0, "seconds": done["seconds"]}
    assert delivered_ids(provider) == set(sent)
