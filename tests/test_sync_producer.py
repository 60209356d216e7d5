"""SyncProducer has the asyncio Producer's API beyond send: schedules (stored exactly where
the async producer stores them) and the opt-in direct-send fallback, whose async deliverer
it runs on one event loop of its own and closes with the producer."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.producers import Producer, SyncProducer
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import DirectSendError, RedisUnavailableError, ValidationError
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import stream_length

MESSAGE: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "digest",
    "recipient": "+15550001",
    "payload": {"text": "hello"},
}
NOT_DIRECT = r"delayed message is not sent directly"


# -- schedules ----------------------------------------------------------------------------


async def _async_listing(settings: Settings) -> list[str]:
    async with Producer(settings) as producer:
        return [s.name for s, _ in await producer.schedules()]


def test_schedules_are_listed_replaced_and_removed(settings: Settings) -> None:
    with SyncProducer(settings) as producer:
        producer.schedule("b-hourly", cron="0 * * * *", **MESSAGE)
        producer.schedule("a-fast", every=30, **{**MESSAGE, "conversation": "other"})
        moved = producer.schedule("a-fast", every=60, **{**MESSAGE, "conversation": "moved"})
        assert moved.every_ms == 60_000
        listed = producer.schedules()
        assert [s.name for s, _ in listed] == ["a-fast", "b-hourly"]
        fast, due_ms = listed[0]
        assert fast.template.conversation == "moved"
        assert due_ms - time.time_ns() // 1_000_000 == pytest.approx(60_000, abs=5_000)
        assert listed[1][1] // 1000 % 3600 == 0, "the next full hour (cron is in UTC)"
        # The async producer sees the same schedules: one storage, one format.
        assert asyncio.run(_async_listing(settings)) == ["a-fast", "b-hourly"]
        assert producer.unschedule("a-fast")
        assert not producer.unschedule("a-fast")
        assert [s.name for s, _ in producer.schedules()] == ["b-hourly"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"every": 0.01}, "every"),
        ({"cron": "61 * * * *"}, "cron"),
        ({}, "schedule"),
        ({"every": 1, "dedup_key": "d"}, "dedup_key"),
        ({"every": 1, "sender": ""}, "sender"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_written(
    settings: Settings, redis_client: redis.Redis, arguments: dict[str, object], field: str
) -> None:
    with SyncProducer(settings) as producer, pytest.raises(ValidationError) as error:
        producer.schedule("bad", **{**MESSAGE, **arguments})
    assert error.value.field == field
    assert redis_client.keys("*schedules*") == []


# -- direct-send fallback -----------------------------------------------------------------


def test_with_fallback_a_message_is_queued_while_redis_is_up_and_sent_directly_when_down(
    own_settings: Settings, own_redis: RedisServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    keys = Keys.from_settings(own_settings)
    with SyncProducer(own_settings, fallback=WebhookDeliverer(provider.url)) as producer:
        queued = producer.send_or_deliver(**MESSAGE)
        assert queued.ok and not queued.direct
        with redis.Redis.from_url(own_redis.url) as client:
            assert stream_length(client, keys) == 1  # the queue, not the provider
        assert provider.deliveries() == []

        own_redis.stop()
        # Two in a row: the second reuses the deliverer's connection on the same loop.
        direct = [producer.send_or_deliver(**{**MESSAGE, "payload": {"n": n}}) for n in (1, 2)]

    assert all(r.ok and r.direct for r in direct)
    assert [d.message_id for d in provider.deliveries()] == [r.message_id for r in direct]
    assert [r.provider_message_id for r in direct] == ["prov-1", "prov-2"]


def test_without_fallback_redis_down_raises_an_error_saying_the_fallback_is_off(
    own_settings: Settings, own_redis: RedisServer
) -> None:
    own_redis.stop()
    with SyncProducer(own_settings) as producer:
        with pytest.raises(RedisUnavailableError, match=r"direct-send fallback is off") as caught:
            producer.send_or_deliver(**MESSAGE)
        assert not caught.value.maybe_done
        with pytest.raises(RedisUnavailableError):
            producer.send(**MESSAGE)


def test_a_failed_direct_send_raises_and_a_delayed_message_is_not_sent_early(
    own_settings: Settings, own_redis: RedisServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(fail_rate=1.0)  # every request answered 503
    own_redis.stop()
    with SyncProducer(own_settings, fallback=WebhookDeliverer(provider.url)) as producer:
        with pytest.raises(DirectSendError, match=r"unreachable .* direct send failed"):
            producer.send_or_deliver(**MESSAGE)
        with pytest.raises(RedisUnavailableError, match=NOT_DIRECT):
            producer.send_or_deliver(**MESSAGE, delay=2.0)
        with pytest.raises(ValidationError, match="sender"):
            producer.send_or_deliver(**MESSAGE, sender="")
    stats = provider.stats()
    assert (stats["requests"], stats["accepted"]) == (1, 0)  # tried once, not retried


class _RecordingDeliverer:
    """Accepts everything; notes the threads and loops it ran on, and whether it was closed."""

    def __init__(self) -> None:
        self.loops: set[int] = set()
        self.delivered: list[Message] = []
        self.closed_on: int | None = None
        self._lock = threading.Lock()

    async def deliver(self, message: Message) -> DeliveryResult:
        await asyncio.sleep(0.05)  # overlapping sends from several threads
        with self._lock:
            self.loops.add(id(asyncio.get_running_loop()))
            self.delivered.append(message)
        return DeliveryResult(provider_message_id=f"p-{message.id}")

    async def aclose(self) -> None:
        self.closed_on = id(asyncio.get_running_loop())


def test_threads_share_one_fallback_loop_and_close_shuts_the_deliverer_on_it(
    own_settings: Settings, own_redis: RedisServer
) -> None:
    deliverer = _RecordingDeliverer()
    own_redis.stop()
    producer = SyncProducer(own_settings, fallback=deliverer)
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda n: producer.send_or_deliver(**MESSAGE, sender=f"s{n}"), range(8))
        )
    producer.close()
    producer.close()  # idempotent

    assert all(r.direct for r in results)
    assert sorted(m.sender or "" for m in deliverer.delivered) == [f"s{n}" for n in range(8)]
    assert len(deliverer.loops) == 1
    assert deliverer.closed_on in deliverer.loops
    with pytest.raises(RuntimeError, match="closed"):
        producer.send_or_deliver(**MESSAGE)
