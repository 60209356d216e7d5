"""The webhook deliverer against the local provider on 127.0.0.1: what it sends, and what
each answer (or its absence) becomes: 2xx delivered with the provider's id, 429 throttled
with Retry-After, 408/5xx/timeouts/refused connections retryable, other statuses permanent.
Its aiohttp session opens inside the loop that first delivers and closes with aclose()."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import pytest
from aiohttp import web

from relayq.consumers.webhook_deliverer import WebhookDeliverer, parse_retry_after
from relayq.ops.local_provider import ProviderThread
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import PermanentDeliveryError, RetryableDeliveryError, ThrottledError
from relayq.streams.message import Message
from relayq.streams.redis_server import free_port
from tests.conftest import ProviderFactory

_ids = itertools.count(1)


def _message(recipient: str = "+15550001") -> Message:
    return Message(
        id=f"m-{next(_ids)}",
        tenant="acme",
        conversation="c-1",
        recipient=recipient,
        priority="normal",
        payload=b'{"text":"hello"}',
        created_ms=1_700_000_000_000,
        metadata={"k": "v"},
    )


async def _deliver(url: str, message: Message, timeout: float = 5.0) -> DeliveryResult:
    webhook = WebhookDeliverer(url, timeout=timeout)
    try:
        return await webhook.deliver(message)
    finally:
        await webhook.aclose()


async def test_a_2xx_is_delivered_with_the_provider_id(provider: ProviderThread) -> None:
    message = _message()
    result = await _deliver(provider.url, message)
    assert result.provider_message_id == "prov-1"
    [delivery] = provider.deliveries()
    assert (delivery.tenant, delivery.conversation, delivery.message_id) == (
        "acme",
        "c-1",
        message.id,
    )


async def test_the_body_carries_the_message_and_the_payload_undecoded() -> None:
    seen: list[tuple[dict[str, object], str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((await request.json(), request.headers["Idempotency-Key"]))
        assert request.content_type == "application/json"
        return web.json_response({"sid": "SM1"})

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    message = _message()
    try:
        result = await _deliver(f"http://127.0.0.1:{port}/hook", message)
    finally:
        await runner.cleanup()
    assert result.provider_message_id == "SM1"  # the id may come as "id", "message_id", "sid"
    assert seen == [
        (
            {
                "id": message.id,
                "tenant": "acme",
                "conversation": "c-1",
                "recipient": "+15550001",
                "priority": "normal",
                "created_ms": 1_700_000_000_000,
                "metadata": {"k": "v"},
                "payload": {"text": "hello"},
            },
            message.id,
        )
    ]


async def test_a_429_is_throttled_with_its_retry_after(make_provider: ProviderFactory) -> None:
    provider = make_provider(throttle_rate=1.0, retry_after=7)
    with pytest.raises(ThrottledError, match=r"HTTP 429") as caught:
        await _deliver(provider.url, _message())
    assert caught.value.retry_after == 7.0


async def test_a_503_is_retryable(make_provider: ProviderFactory) -> None:
    provider = make_provider(fail_rate=1.0)
    with pytest.raises(RetryableDeliveryError, match=r"HTTP 503: .*try again") as caught:
        await _deliver(provider.url, _message())
    assert caught.value.kind == "http_503"


async def test_a_500_is_retryable(provider: ProviderThread) -> None:
    with pytest.raises(RetryableDeliveryError) as caught:
        await _deliver(provider.url, _message(recipient="down-1"))
    assert caught.value.kind == "http_500"


async def test_a_400_is_permanent(provider: ProviderThread) -> None:
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 400: .*invalid recipient") as caught:
        await _deliver(provider.url, _message(recipient="reject-1"))
    assert caught.value.kind == "http_400"


async def test_a_refused_connection_is_retryable() -> None:
    with pytest.raises(RetryableDeliveryError) as caught:
        await _deliver(f"http://127.0.0.1:{free_port()}/deliver", _message())
    assert caught.value.kind == "connection"


async def test_no_answer_within_the_timeout_is_retryable(make_provider: ProviderFactory) -> None:
    provider = make_provider(latency=2.0)
    with pytest.raises(RetryableDeliveryError) as caught:
        await _deliver(provider.url, _message(), timeout=0.2)
    assert caught.value.kind == "timeout"


async def test_the_proxy_named_by_the_environment_carries_the_requests(
    provider: ProviderThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with httpx before: HTTP_PROXY is honoured (the provider plays the proxy here).
    monkeypatch.setenv("HTTP_PROXY", provider.url.removesuffix("/deliver"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    message = _message()
    await _deliver("http://provider.invalid/deliver", message)
    assert [d.message_id for d in provider.deliveries()] == [message.id]


def test_the_deliverer_is_built_outside_a_loop_and_opens_its_session_in_one(
    provider: ProviderThread,
) -> None:
    webhook = WebhookDeliverer(provider.url)  # no running loop here: nothing opened yet

    async def deliver_twice_then_close() -> None:
        await webhook.deliver(_message())
        await webhook.deliver(_message())
        await webhook.aclose()
        await webhook.aclose()  # idempotent

    asyncio.run(deliver_twice_then_close())
    assert len(provider.deliveries()) == 2


async def test_a_shared_session_is_used_and_left_open(provider: ProviderThread) -> None:
    async with aiohttp.ClientSession() as session:
        webhook = WebhookDeliverer(provider.url, session=session)
        await webhook.deliver(_message())
        await webhook.aclose()
        assert not session.closed
    assert len(provider.deliveries()) == 1


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
