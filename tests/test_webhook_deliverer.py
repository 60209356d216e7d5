"""The webhook deliverer against the local provider on 127.0.0.1: what it sends, and what
each answer (or its absence) becomes: 2xx delivered with the provider's id, 429 throttled
with Retry-After, 408/5xx/timeouts/refused connections retryable, other statuses permanent.
Its aiohttp session opens inside the loop that first delivers and closes with aclose()."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from relayq.consumers.deliverer_factory import build_deliverer
from relayq.consumers.webhook_deliverer import WebhookDeliverer, parse_retry_after
from relayq.consumers.webhook_signature import HEADER, verify
from relayq.ops.local_provider import ProviderThread
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import (
    ConfigurationError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)
from relayq.streams.message import Message
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings, parse_headers
from tests.conftest import ProviderFactory
from tests.support import worker_environment

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


@contextlib.asynccontextmanager
async def _receiver(handler: Any) -> AsyncIterator[str]:
    """A real aiohttp server on 127.0.0.1 answering POST /hook with ``handler``; its URL."""
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


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

    message = _message()
    async with _receiver(handler) as url:
        result = await _deliver(url, message)
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


async def test_a_secret_signs_each_request_and_the_sender_is_in_the_body() -> None:
    seen: list[tuple[bytes, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get(HEADER)))
        return web.json_response({"id": "p-1"})

    message = msgspec.structs.replace(_message(), sender="+15559999")
    async with _receiver(handler) as url:
        webhook = WebhookDeliverer(url, secret="s3cret")
        try:
            await webhook.deliver(message)
        finally:
            await webhook.aclose()
    [(body, signature)] = seen
    assert msgspec.json.decode(body)["sender"] == "+15559999"
    now = time.time()
    assert verify(b"s3cret", body, signature, now)
    assert not verify(b"other", body, signature, now)
    assert not verify(b"s3cret", body.replace(b"+15559999", b"+15550000"), signature, now)
    assert not verify(b"s3cret", body, signature, now + 3600)  # a replay an hour later
    assert not verify(b"s3cret", body, None, now)


def test_the_secret_is_never_shown(settings: Settings) -> None:
    with_secret = settings.replace(webhook_secret="hunter2")
    assert "hunter2" not in repr(with_secret) and "hunter2" not in str(with_secret)
    env = {**worker_environment(with_secret)}
    assert env["RELAYQ_WEBHOOK_SECRET"] == "hunter2"
    for args in (("env",), ("env", "--json")):
        done = subprocess.run([sys.executable, "-m", "relayq.ops.cli", *args], env=env,
                              capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
        assert "hunter2" not in done.stdout + done.stderr
        assert "RELAYQ_WEBHOOK_SECRET" in done.stdout


def test_configured_headers_reach_the_provider_and_are_never_shown(settings: Settings) -> None:
    """RELAYQ_WEBHOOK_HEADERS (a provider's auth) on every request of the deliverer a worker
    builds; never printed by ``relayq env``, in a settings repr or in an error about it."""
    headers = '{"Authorization": "Bearer tok-123", "X-Api-Key": "key-456"}'
    seen: list[tuple[str | None, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), request.headers.get("X-Api-Key")))
        return web.json_response({"id": "p-1"})

    async def send() -> None:
        async with _receiver(handler) as url:
            deliverer = build_deliverer(settings.replace(webhook_headers=headers,
                                                         webhook_url=url), None)  # fmt: skip
            try:
                await deliverer.deliver(_message())
            finally:
                await deliverer.aclose()

    asyncio.run(send())
    assert seen == [("Bearer tok-123", "key-456")]
    with_headers = settings.replace(webhook_headers=headers)
    assert "tok-123" not in repr(with_headers)
    env = worker_environment(with_headers)
    done = subprocess.run([sys.executable, "-m", "relayq.ops.cli", "env"], env=env,
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert "tok-123" not in done.stdout + done.stderr
    bad = {**env, "RELAYQ_WEBHOOK_HEADERS": '{"Authorization": ["Bearer tok-123"]}'}
    refused = subprocess.run([sys.executable, "-m", "relayq.ops.cli", "env"], env=bad,
                             capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert refused.returncode == 2 and "RELAYQ_WEBHOOK_HEADERS" in refused.stderr
    assert "tok-123" not in refused.stdout + refused.stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [("not json", "JSON object"), ('{"Bad Name": "x"}', "'Bad Name'"),
     ('{"X-A": "one\\r\\ntwo"}', "line break"), ('["x"]', "JSON object")],
)  # fmt: skip
def test_headers_that_are_not_usable_are_refused_naming_why(text: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        parse_headers(text)
