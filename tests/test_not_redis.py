"""A REDIS_URL that points at something that is not Redis (an HTTP server, a peer that
answers garbage): every producer call fails with RedisUnavailableError naming the URL
(never its password) and what went wrong, not with a raw redis-py exception."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.ops.local_provider import ProviderThread
from relayq.producers import Producer, SendRequest, SyncProducer
from relayq.streams.errors import RedisUnavailableError
from relayq.streams.settings import Settings

HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\nBad Request"
)
GARBAGE_ANSWER = b"\x00\x01\x02 not a protocol anyone speaks \xff\r\n"
PASSWORD = "hunter2-secret"
FIELDS: dict[str, Any] = {"tenant": "t1", "conversation": "c1", "recipient": "r1", "payload": {}}


class NotRedisServer:
    """A real TCP server on 127.0.0.1 that answers whatever it receives with ``answer``:
    then closes the connection (as an HTTP server does) or keeps it open (``linger``)."""

    def __init__(self, answer: bytes, *, linger: bool) -> None:
        self.answer = answer
        self.linger = linger
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    def start(self) -> NotRedisServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if connection.recv(65536):
                connection.sendall(self.answer)
            if not self.linger:
                connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept() (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()
        with self._lock:
            for connection in self._connections:
                connection.close()


@pytest.fixture(params=["http", "garbage"])
def not_redis(request: pytest.FixtureRequest) -> Iterator[NotRedisServer]:
    """An HTTP server that answers 400 and hangs up, or a peer that answers garbage."""
    if request.param == "http":
        server = NotRedisServer(HTTP_ANSWER, linger=False)
    else:
        server = NotRedisServer(GARBAGE_ANSWER, linger=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def settings_for(server: NotRedisServer, tmp_path: Path) -> Settings:
    """Settings whose REDIS_URL carries a password (the errors must not show it)."""
    return Settings(
        redis_url=f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0",
        data_dir=str(tmp_path / "data"),
        redis_timeout=5.0,
        redis_connect_timeout=5.0,
    )


def check_error(error: BaseException, server: NotRedisServer) -> None:
    """A relayq error naming the URL without its password and saying it is not Redis."""
    assert isinstance(error, RedisUnavailableError), repr(error)
    text = str(error)
    assert f"redis://127.0.0.1:{server.port}/0 did not answer as a Redis server" in text, text
    assert PASSWORD not in text
    assert not error.maybe_done  # nothing can have been written: there is no Redis there


SyncCall = Callable[[SyncProducer], object]
SYNC_CALLS: dict[str, SyncCall] = {
    "send": lambda producer: producer.send(**FIELDS),
    "send_or_deliver": lambda producer: producer.send_or_deliver(**FIELDS),
    "schedule": lambda producer: producer.schedule("daily", every=60.0, **FIELDS),
    "schedules": lambda producer: producer.schedules(),
    "unschedule": lambda producer: producer.unschedule("daily"),
}

AsyncCall = Callable[[Producer], Awaitable[object]]
ASYNC_CALLS: dict[str, AsyncCall] = {
    "send": lambda producer: producer.send(**FIELDS),
    "send_or_deliver": lambda producer: producer.send_or_deliver(**FIELDS),
    "schedule": lambda producer: producer.schedule("daily", every=60.0, **FIELDS),
    "schedules": lambda producer: producer.schedules(),
    "unschedule": lambda producer: producer.unschedule("daily"),
}


@pytest.mark.parametrize("call", SYNC_CALLS, ids=str)
def test_sync_producer_calls_raise_a_relayq_error_naming_the_url(
    not_redis: NotRedisServer, tmp_path: Path, call: str
) -> None:
    with SyncProducer(settings_for(not_redis, tmp_path)) as producer:
        with pytest.raises(RedisUnavailableError) as caught:
            SYNC_CALLS[call](producer)
        check_error(caught.value, not_redis)


@pytest.mark.parametrize("call", ASYNC_CALLS, ids=str)
async def test_producer_calls_raise_a_relayq_error_naming_the_url(
    not_redis: NotRedisServer, tmp_path: Path, call: str
) -> None:
    async with Producer(settings_for(not_redis, tmp_path)) as producer:
        with pytest.raises(RedisUnavailableError) as caught:
            await ASYNC_CALLS[call](producer)
        check_error(caught.value, not_redis)


def batch_errors(outcome: list[Any] | BaseException) -> list[BaseException]:
    """send_many either raises for the whole batch or fails every item: the errors."""
    if isinstance(outcome, BaseException):
        return [outcome]
    assert all(not result.ok for result in outcome), outcome
    return [result.error for result in outcome]


def test_sync_send_many_fails_with_relayq_errors_naming_the_url(
    not_redis: NotRedisServer, tmp_path: Path
) -> None:
    requests = [SendRequest(**FIELDS), SendRequest(**FIELDS)]
    with SyncProducer(settings_for(not_redis, tmp_path)) as producer:
        try:
            outcome: list[Any] | BaseException = producer.send_many(requests)
        except Exception as exc:
            outcome = exc
    for error in batch_errors(outcome):
        check_error(error, not_redis)


async def test_send_many_fails_with_relayq_errors_naming_the_url(
    not_redis: NotRedisServer, tmp_path: Path
) -> None:
    requests = [SendRequest(**FIELDS), SendRequest(**FIELDS)]
    async with Producer(settings_for(not_redis, tmp_path)) as producer:
        try:
            outcome: list[Any] | BaseException = await producer.send_many(requests)
        except Exception as exc:
            outcome = exc
    for error in batch_errors(outcome):
        check_error(error, not_redis)


async def test_with_a_fallback_send_or_deliver_delivers_directly(
    not_redis: NotRedisServer, tmp_path: Path, provider: ProviderThread
) -> None:
    """Nothing can have been written to a server that is not Redis: the fallback applies."""
    webhook = WebhookDeliverer(provider.url, timeout=5.0)
    try:
        async with Producer(settings_for(not_redis, tmp_path), fallback=webhook) as producer:
            result = await producer.send_or_deliver(**FIELDS)
    finally:
        await webhook.aclose()
    assert result.ok and result.direct, result
    assert [d.message_id for d in provider.deliveries()] == [result.message_id]
