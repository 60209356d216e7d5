"""A Redis that restarts without persistence comes back empty: workers recreate their
consumer groups and write the namespace's partition count back, with warnings (not
an error-level traceback per partition), and deliver what is sent afterwards.
Messages queued before the loss are gone with Redis's data (README: durability is Redis's)."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from relayq.streams.keys import Keys
from relayq.streams.message import Priority
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    all_ids,
    conversation_requests,
    delivered_ids,
    send_all,
    wait_until,
)


def test_workers_recover_from_a_redis_that_lost_its_data(
    own_settings: Settings,
    own_redis: RedisServer,
    tmp_path: Path,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings, keys = own_settings, Keys.from_settings(own_settings)
    provider = make_provider()
    worker = workers.start(provider.url, settings=settings)
    before = send_all(settings, conversation_requests(20, 2, prefix="before"))
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(before), timeout=30, message="first batch"
    )

    own_redis.stop()
    own_redis.start()  # same port, no AOF: an empty Redis
    with redis.Redis.from_url(own_redis.url) as client:
        wait_until(
            lambda: client.hget(keys.meta, "partitions") == str(keys.partitions).encode(),
            timeout=20,
            message="the worker wrote the partition count back",
        )
    after = send_all(settings, conversation_requests(20, 2, prefix="after"))
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(after),
        timeout=60,
        message=f"delivered after the restart; log:\n{worker.log_tail()}",
    )

    log = worker.log_tail(200_000)
    assert worker.alive()
    assert "Traceback" not in log and '"level": "error"' not in log, log


def test_a_reader_whose_group_vanished_recreates_it(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    """The consumer groups deleted under a reading worker (FLUSHDB of the streams alone,
    an operator's XGROUP DESTROY): NOGROUP on its next read, a warning, groups recreated."""
    provider = make_provider()
    worker = workers.start(provider.url)
    wait_until(
        lambda: redis_client.exists(keys.stream(0, Priority.HIGH)), timeout=20, message="groups"
    )
    time.sleep(0.5)  # the readers are blocked in XREADGROUP
    for partition in range(keys.partitions):
        for stream in keys.streams(partition):
            redis_client.delete(stream)
    sent = send_all(settings, conversation_requests(20, 2))
    wait_until(
        lambda: delivered_ids(provider) >= all_ids(sent),
        timeout=30,
        message=f"delivered after the groups were recreated; log:\n{worker.log_tail()}",
    )
    log = worker.log_tail(200_000)
    assert "consumer_group_missing" in log
    assert "Traceback" not in log and '"level": "error"' not in log, log
