"""Issue 15 item 4: a message already recorded as delivered is not sent again.

A worker killed right after the provider's success and before the acknowledgement leaves
its entry pending; the next owner recovers it. When the delivered record was written in
between (the test hook ``CRASH_AFTER_RECORD``; in production: a previous owner's
acknowledgement landing after this worker read the entry), the next owner finds it in the
same round trip that marks the attempt started, and acknowledges without sending. Without
a record (``CRASH_AFTER_SEND``) it is sent again: the window that remains."""

from __future__ import annotations

import signal
from typing import Any

import redis

from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.outcome import decode_record
from relayq.streams.settings import Settings
from tests.crashing_deliverer import (
    CRASH_AFTER_RECORD,
    CRASH_AFTER_SEND,
    UNUSED_URL,
    WORKER_ENV,
    sunk_ids,
)
from tests.support import WorkerPool, pending_total

MESSAGE: dict[str, Any] = {"tenant": "acme", "conversation": "c-1", "recipient": "+15550100"}


def crash_then_recover(
    settings: Settings, workers: WorkerPool, payload: dict[str, Any]
) -> tuple[str, str]:
    """Send ``payload`` then a follower in one conversation; a worker dies on the first,
    a second worker finishes both. Their ids."""
    with SyncProducer(settings) as producer:
        crashing = producer.send(**MESSAGE, payload=payload)
        follower = producer.send(**MESSAGE, payload={"n": 2})
    first = workers.start(UNUSED_URL, burst=True, settings=settings, **WORKER_ENV)
    assert first.wait(timeout=30) == -signal.SIGKILL, workers.logs()
    second = workers.start(UNUSED_URL, burst=True, settings=settings, **WORKER_ENV)
    assert second.wait(timeout=60) == 0, workers.logs()
    return crashing, follower


def test_a_message_recorded_as_delivered_is_not_sent_again(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool
) -> None:
    settings = settings.replace(lease_ttl=1.5, send_timeout=0.5)
    crashing, follower = crash_then_recover(settings, workers, CRASH_AFTER_RECORD)

    assert sunk_ids(redis_client, keys) == [crashing, follower]  # sent once, then in order
    assert pending_total(redis_client, keys) == 0
    partition = keys.partition_of(MESSAGE["tenant"], MESSAGE["conversation"])
    blob: Any = redis_client.hget(keys.outcomes(partition), crashing)
    record = decode_record(blob)
    assert (record.state, record.provider_message_id) == ("delivered", "first")


def test_without_a_record_the_redelivery_window_remains(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool
) -> None:
    settings = settings.replace(lease_ttl=1.5, send_timeout=0.5)
    crashing, follower = crash_then_recover(settings, workers, CRASH_AFTER_SEND)

    assert sunk_ids(redis_client, keys) == [crashing, crashing, follower]
    assert pending_total(redis_client, keys) == 0
