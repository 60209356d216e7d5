"""The webhook deliverer's socket-level fence, against real servers on 127.0.0.1.

A request the fence stops puts no byte on the socket (aiohttp holds the status line and
headers back until the body's write, where the fence is checked), raises SendFencedError
(not a connection error: the worker releases the message instead of using an attempt), and
leaves the session usable. Nothing after the body's write is fenced: fencing the end of a
request already on the wire reported a request the provider had received as "not sent",
and the next owner sent it again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.ops.local_provider import ProviderThread
from relayq.streams.deliverer import SendFencedError, send_fence
from relayq.streams.errors import RetryableDeliveryError
from relayq.streams.message import Message

_ids = itertools.count(1)


def _message() -> Message:
    return Message(
        id=f"m-{next(_ids)}",
        tenant="acme",
        conversation="c-1",
        recipient="+15550001",
        priority="normal",
        payload=b'{"text":"hello"}',
        created_ms=1,
    )


class _Listener:
    """A TCP server that records every byte it receives and never answers."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while chunk := await reader.read(65536):
            self.received += chunk
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[tuple[_Listener, str]]:
    recorder = _Listener()
    server = await asyncio.start_server(recorder._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield recorder, f"http://127.0.0.1:{port}/deliver"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_request_the_fence_stops_puts_no_byte_on_the_socket(
    listener: tuple[_Listener, str],
) -> None:
    recorder, url = listener
    webhook = WebhookDeliverer(url, timeout=0.5)
    try:
        with send_fence(lambda: False), pytest.raises(SendFencedError):
            await webhook.deliver(_message())
        await asyncio.sleep(0.1)  # whatever was written has arrived by now
        assert recorder.received == b""

        # The same listener sees a request the fence lets through (it never answers).
        with send_fence(lambda: True), pytest.raises(RetryableDeliveryError):
            await webhook.deliver(_message())
    finally:
        await webhook.aclose()
    assert recorder.received.startswith(b"POST /deliver HTTP/1.1\r\n")
    assert recorder.received.endswith(b'"payload":{"text":"hello"}}')


async def test_a_fenced_request_reaches_no_provider_and_the_session_keeps_working(
    provider: ProviderThread,
) -> None:
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    first, fenced, third = _message(), _message(), _message()
    try:
        with send_fence(lambda: True):
            await webhook.deliver(first)  # leaves a kept-alive connection in the pool
        with send_fence(lambda: False), pytest.raises(SendFencedError):
            await webhook.deliver(fenced)
        with send_fence(lambda: True):
            result = await webhook.deliver(third)
    finally:
        await webhook.aclose()
    assert result.provider_message_id == "prov-2"
    assert [a.message_id for a in provider.attempts()] == [first.id, third.id]


def _open_once(calls: list[int]) -> Callable[[], bool]:
    """A fence that lets the first check pass and closes right after it."""

    def allowed() -> bool:
        calls.append(1)
        return len(calls) == 1

    return allowed


async def test_a_fence_closing_once_the_body_is_written_does_not_unsend_the_request(
    provider: ProviderThread,
) -> None:
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    calls: list[int] = []
    message = _message()
    try:
        with send_fence(_open_once(calls)):
            result = await webhook.deliver(message)
    finally:
        await webhook.aclose()
    assert result.provider_message_id == "prov-1"  # delivered, not reported "not sent"
    assert calls == [1]  # checked once per request: as its bytes leave
    assert [d.message_id for d in provider.deliveries()] == [message.id]
