"""Contract 6, producer side: a dedup key suppresses a repeated send() within the window
(same message id back, one stream entry); after the window the same key sends anew."""

from __future__ import annotations

from typing import Any

import redis

from relayq.producers import Producer, SendRequest, SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import async_wait_until, stream_length, wait_until

WINDOW = 0.3
MESSAGE: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "c-1",
    "recipient": "+15550100",
    "payload": {"text": "your code is 1234"},
}


async def test_same_key_within_the_window_is_one_message(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    settings = settings.replace(dedup_window=WINDOW)
    dedup_key = keys.dedup("acme", "c-1", "order-42")
    async with Producer(settings) as producer:
        first = await producer.send(**MESSAGE, dedup_key="order-42")
        again = await producer.send(**MESSAGE, dedup_key="order-42")
        other_key = await producer.send(**MESSAGE, dedup_key="order-43")
        assert again == first
        assert other_key != first
        assert stream_length(redis_client, keys) == 2

        # The window is kept by Redis (the key expires); once it has passed, a new message.
        async def window_over() -> bool:
            return not redis_client.exists(dedup_key)

        await async_wait_until(window_over, timeout=5, message="dedup window expired")
        later = await producer.send(**MESSAGE, dedup_key="order-42")
    assert later not in (first, other_key)
    assert stream_length(redis_client, keys) == 3


def test_sync_producer_dedups_too(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    settings = settings.replace(dedup_window=WINDOW)
    dedup_key = keys.dedup("acme", "c-1", "k")
    with SyncProducer(settings) as producer:
        first = producer.send(**MESSAGE, dedup_key="k")
        assert producer.send(**MESSAGE, dedup_key="k") == first
        assert stream_length(redis_client, keys) == 1
        wait_until(lambda: not redis_client.exists(dedup_key), timeout=5, message="expired")
        assert producer.send(**MESSAGE, dedup_key="k") != first
    assert stream_length(redis_client, keys) == 2


async def test_send_many_reports_duplicates(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    requests = [
        SendRequest(**MESSAGE, dedup_key="a"),
        SendRequest(**MESSAGE, dedup_key="b"),
        SendRequest(**MESSAGE, dedup_key="a"),  # repeats the first, in the same batch
        SendRequest(**MESSAGE),  # no key: never deduplicated
        SendRequest(**MESSAGE),
    ]
    async with Producer(settings) as producer:
        results = await producer.send_many(requests)
        repeat = await producer.send_many([SendRequest(**MESSAGE, dedup_key="b")])
    assert [r.duplicate for r in results] == [False, False, True, False, False]
    assert results[2].message_id == results[0].message_id
    assert results[3].message_id != results[4].message_id
    assert repeat[0].duplicate and repeat[0].message_id == results[1].message_id
    assert stream_length(redis_client, keys) == 4


async def test_dedup_holds_for_delayed_messages(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    partition = keys.partition_of("acme", "c-1")
    async with Producer(settings) as producer:
        first = await producer.send(**MESSAGE, dedup_key="later", delay=60)
        again = await producer.send(**MESSAGE, dedup_key="later", delay=60)
    assert again == first
    delayed: Any = redis_client.zrange(keys.delayed(partition), 0, -1)
    assert delayed == [first.encode()]
    assert stream_length(redis_client, keys) == 0


def _same_partition_conversation(keys: Keys, tenant: str, other_tenant: str) -> str:
    """A conversation of ``other_tenant`` in the partition of ``tenant``'s "c-1"."""
    partition = keys.partition_of(tenant, "c-1")
    return next(
        f"c-{n}" for n in range(2, 10_000) if keys.partition_of(other_tenant, f"c-{n}") == partition
    )


async def test_one_tenants_key_never_suppresses_another_tenants_message(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    """The same dedup key in two tenants whose conversations share a partition: two
    messages (the key was once scoped by partition, and B's message was silently dropped)."""
    b_conversation = _same_partition_conversation(keys, "acme", "globex")
    b_message = {**MESSAGE, "tenant": "globex", "conversation": b_conversation}
    async with Producer(settings) as producer:
        a_id = await producer.send(**MESSAGE, dedup_key="welcome")
        b_id = await producer.send(**b_message, dedup_key="welcome")
        b_again = await producer.send(**b_message, dedup_key="welcome")
    assert b_id != a_id
    assert b_again == b_id
    assert stream_length(redis_client, keys) == 2


async def test_a_dedup_key_is_scoped_by_conversation(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    """Within a tenant the scope is the conversation, wherever conversations hash to."""
    same_partition = _same_partition_conversation(keys, "acme", "acme")
    async with Producer(settings) as producer:
        first = await producer.send(**MESSAGE, dedup_key="k")
        other = await producer.send(**{**MESSAGE, "conversation": same_partition}, dedup_key="k")
        # A tenant and conversation that concatenate alike are still different scopes.
        split = await producer.send(
            **{**MESSAGE, "tenant": "acmec", "conversation": "-1"}, dedup_key="k"
        )
    assert len({first, other, split}) == 3
    assert stream_length(redis_client, keys) == 3
