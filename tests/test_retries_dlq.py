"""Contract 5: retryable failures are retried up to max_attempts, then dead-lettered with
their error, attempts and origin; permanent failures are dead-lettered at once; either way
the rest of the conversation goes on, in order. Attempts are counted in Redis, so a new
owner continues the count instead of starting over."""

from __future__ import annotations

import signal
from typing import Any

import redis

from relayq.ops.local_provider import ProviderThread
from relayq.producers import SyncProducer
from relayq.streams.codec import decode_entry
from relayq.streams.keys import Keys
from relayq.streams.message import Priority
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    SentLog,
    WorkerPool,
    check_order,
    dead_letters,
    pending_total,
    wait_until,
)

MAX_ATTEMPTS = 4


def _send(producer: SyncProducer, sent: SentLog, conversation: str, recipient: str) -> str:
    message_id = producer.send(
        tenant="acme", conversation=conversation, recipient=recipient, payload={"r": recipient}
    )
    sent[("acme", conversation)].append(message_id)
    return message_id


def test_failures_are_dead_lettered_and_the_conversation_goes_on(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    provider: ProviderThread,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=MAX_ATTEMPTS)
    sent: SentLog = {("acme", "flaky"): [], ("acme", "picky"): []}
    with SyncProducer(settings) as producer:
        before_down = _send(producer, sent, "flaky", "+15550001")
        down = _send(producer, sent, "flaky", "down-15550001")  # always 500
        after_down = [_send(producer, sent, "flaky", "+15550001") for _ in range(3)]
        before_reject = _send(producer, sent, "picky", "+15550002")
        reject = _send(producer, sent, "picky", "reject-15550002")  # always 400
        after_reject = [_send(producer, sent, "picky", "+15550002") for _ in range(3)]

    worker = workers.start(provider.url, burst=True, settings=settings)
    assert worker.wait(timeout=60) == 0  # burst mode: exits once nothing is left

    # The provider saw the 500 exactly max_attempts times and the 400 once.
    stats = provider.provider.stats()
    assert stats["failed"] == MAX_ATTEMPTS
    assert stats["rejected"] == 1

    # Both sit in their partition's dead-letter stream, with why, how often and whence.
    letters = {
        decode_entry({b"m": entry["entry:m"]}).id: entry
        for entry in dead_letters(redis_client, keys)
    }
    assert set(letters) == {down, reject}
    for message_id, kind, attempts, error in (
        (down, b"exhausted", MAX_ATTEMPTS, b"HTTP 500"),
        (reject, b"permanent", 1, b"HTTP 400"),
    ):
        letter = letters[message_id]
        partition = keys.partition_of("acme", "flaky" if message_id == down else "picky")
        assert letter["kind"] == kind
        assert int(letter["attempts"]) == attempts
        assert error in letter["error"]
        assert letter["origin_stream"].decode() == keys.stream(partition, Priority.NORMAL)
        assert letter["origin_id"]
        assert int(letter["failed_ms"]) > 0
        assert letter["consumer"]
        dlq_ids: Any = redis_client.xrange(keys.dead_letter(partition))
        assert letter["dlq_id"] in [dlq_id for dlq_id, _ in dlq_ids]

    # Every other message was delivered, each conversation in send order, and the messages
    # behind a failing one waited for it to be settled (a retry holds its conversation).
    result = check_order(sent, provider.deliveries())
    assert result.delivered == {before_down, *after_down, before_reject, *after_reject}
    assert result.violations == []
    assert result.duplicates == 0
    received_ns = {d.message_id: d.received_ns for d in provider.deliveries()}
    assert received_ns[after_down[0]] // 1_000_000 >= int(letters[down]["failed_ms"])
    assert received_ns[after_reject[0]] // 1_000_000 >= int(letters[reject]["failed_ms"])

    # Nothing is left pending, and no attempts record outlives its entry.
    assert pending_total(redis_client, keys) == 0
    assert not any(redis_client.exists(keys.attempts(p)) for p in range(keys.partitions))


def test_a_new_owner_continues_the_attempt_count(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    # A long backoff leaves time to kill the worker between two attempts.
    settings = settings.replace(max_attempts=MAX_ATTEMPTS, backoff_base=0.5)
    provider = make_provider()
    with SyncProducer(settings) as producer:
        down = producer.send(tenant="acme", conversation="c", recipient="down-1", payload={})
    partition = keys.partition_of("acme", "c")
    first = workers.start(provider.url, settings=settings)

    def failures_recorded() -> int:
        records: Any = redis_client.hvals(keys.attempts(partition))
        return int(records[0].split(b":")[0]) if records else 0

    wait_until(lambda: failures_recorded() >= 2, timeout=20, message="two failures recorded")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert provider.provider.stats()["failed"] == 2

    second = workers.start(provider.url, burst=True, settings=settings)
    assert second.wait(timeout=60) == 0
    # Two attempts by the first owner, two by the second: max_attempts in all, not more.
    assert provider.provider.stats()["failed"] == MAX_ATTEMPTS
    [letter] = dead_letters(redis_client, keys)
    assert decode_entry({b"m": letter["entry:m"]}).id == down
    assert letter["kind"] == b"exhausted"
    assert int(letter["attempts"]) == MAX_ATTEMPTS
