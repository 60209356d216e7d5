"""The direct-send switch (``RELAYQ_DIRECT_SEND=1`` / ``direct=True``), a rollback to
sending without the queue: ``send()`` hands the message to the deliverer and returns its
id without a single Redis command. What it gives up (ordering across processes, limits,
retries, DLQ, dedup) is the README's; what it must not do is touch Redis or lose an error."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import redis

from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.producers import Producer, SendRequest, SyncProducer
from relayq.streams.errors import DirectSendError, ValidationError
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory

MESSAGE: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "c-1",
    "recipient": "+15550001",
    "payload": {"text": "hello"},
}


def _dead_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _commands_processed(client: redis.Redis) -> int:
    stats: Any = client.info("stats")
    return int(stats["total_commands_processed"])


async def test_the_switch_from_the_environment_delivers_with_no_redis_listening(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider()
    settings = Settings.from_env(
        {
            "REDIS_URL": f"redis://127.0.0.1:{_dead_port()}/0",
            "RELAYQ_DIRECT_SEND": "1",
            "RELAYQ_WEBHOOK_URL": provider.url,
        }
    )
    async with Producer(settings) as producer:
        assert producer.direct
        message_id = await producer.send(**MESSAGE)
        [result] = await producer.send_many([SendRequest(**{**MESSAGE, "payload": {"n": 2}})])
        both = await producer.send_or_deliver(**MESSAGE)
    assert result.ok and result.direct and both.direct
    assert [d.message_id for d in provider.deliveries()] == [
        message_id,
        result.message_id,
        both.message_id,
    ]


def test_sync_producer_with_direct_true_issues_no_redis_command(
    settings: Settings, redis_server: RedisServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    with redis.Redis.from_url(redis_server.url) as watcher:
        before = _commands_processed(watcher)
        with SyncProducer(settings, direct=True, fallback=WebhookDeliverer(provider.url)) as p:
            message_ids = [p.send(**{**MESSAGE, "payload": {"n": n}}) for n in range(3)]
        # Only the watcher's own INFO calls were processed in between.
        assert _commands_processed(watcher) == before + 1
        assert watcher.dbsize() == 0
    assert [d.message_id for d in provider.deliveries()] == message_ids


async def test_direct_send_refuses_a_delay_and_reports_a_failed_delivery(
    settings: Settings, make_provider: ProviderFactory
) -> None:
    provider = make_provider(fail_rate=1.0)  # every request answered 503
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    try:
        async with Producer(settings, direct=True, fallback=webhook) as producer:
            with pytest.raises(ValidationError, match=r"invalid delay: .*RELAYQ_DIRECT_SEND"):
                await producer.send(**MESSAGE, delay=5.0)
            with pytest.raises(DirectSendError, match=r"direct send is on .* failed: HTTP 503"):
                await producer.send(**MESSAGE)
    finally:
        await webhook.aclose()
    assert provider.stats()["requests"] == 1  # tried once, not retried


def test_direct_send_cannot_use_the_sink_deliverer(settings: Settings) -> None:
    with pytest.raises(ValueError, match="sink"):
        SyncProducer(settings.replace(direct_send=True, deliverer="sink"))
