"""Direct-send fallback (opt-in): with Redis unreachable, a producer given a fallback
deliverer sends the message to the provider itself and says so; without one it raises an
error saying the fallback is off. A failed direct send and a delayed message are errors,
never a silent loss or an early send."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.producers import Producer
from relayq.streams.errors import DirectSendError, RedisUnavailableError
from relayq.streams.keys import Keys
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import stream_length

MESSAGE: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "c-1",
    "recipient": "+15550001",
    "payload": {"text": "hello"},
}
NOT_DIRECT = r"delayed message is not sent directly"


async def test_with_fallback_on_a_message_is_queued_while_redis_is_up_and_sent_directly_when_down(
    own_settings: Settings,
    own_redis: RedisServer,
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider()
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    keys = Keys.from_settings(own_settings)
    try:
        async with Producer(own_settings, fallback=webhook) as producer:
            queued = await producer.send_or_deliver(**MESSAGE)
            assert queued.ok and not queued.direct and queued.provider_message_id is None
            with redis.Redis.from_url(own_redis.url) as client:
                assert stream_length(client, keys) == 1  # the queue, not the provider
            assert provider.deliveries() == []

            own_redis.stop()
            direct = await producer.send_or_deliver(**{**MESSAGE, "payload": {"text": "again"}})
    finally:
        await webhook.aclose()

    assert direct.ok and direct.direct
    assert direct.message_id is not None and direct.message_id != queued.message_id
    [delivery] = provider.deliveries()
    assert (delivery.tenant, delivery.conversation, delivery.message_id) == (
        "acme",
        "c-1",
        direct.message_id,
    )
    assert direct.provider_message_id == "prov-1"  # what the provider answered


async def test_without_fallback_redis_down_raises_an_error_saying_the_fallback_is_off(
    own_settings: Settings, own_redis: RedisServer
) -> None:
    own_redis.stop()
    async with Producer(own_settings) as producer:
        with pytest.raises(RedisUnavailableError, match=r"direct-send fallback is off") as caught:
            await producer.send_or_deliver(**MESSAGE)
        assert not caught.value.maybe_done  # refused: nothing can have been enqueued
        # Plain send() has no fallback at all.
        with pytest.raises(RedisUnavailableError):
            await producer.send(**MESSAGE)


async def test_a_failed_direct_send_raises_direct_send_error(
    own_settings: Settings, own_redis: RedisServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(fail_rate=1.0)  # every request answered 503
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    own_redis.stop()
    try:
        async with Producer(own_settings, fallback=webhook) as producer:
            with pytest.raises(DirectSendError, match=r"unreachable .* direct send failed"):
                await producer.send_or_deliver(**MESSAGE)
    finally:
        await webhook.aclose()
    stats = provider.stats()
    assert (stats["requests"], stats["accepted"]) == (1, 0)  # tried once, not retried


async def test_a_delayed_message_is_refused_rather_than_sent_early(
    own_settings: Settings, own_redis: RedisServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    own_redis.stop()
    try:
        async with Producer(own_settings, fallback=webhook) as producer:
            with pytest.raises(RedisUnavailableError, match=NOT_DIRECT):
                await producer.send_or_deliver(**MESSAGE, delay=2.0)
            with pytest.raises(RedisUnavailableError, match=NOT_DIRECT):
                await producer.send_or_deliver(**MESSAGE, not_before=1e10)
    finally:
        await webhook.aclose()
    assert provider.stats()["requests"] == 0
