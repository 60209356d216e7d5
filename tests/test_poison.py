"""Contract 5 and 7: a stream entry that is not a relayq message (written by hand, by a
foreign writer, corrupted) goes to the dead-letter stream on first sight, exactly once,
with kind ``poison``; it never loops, and the worker goes on delivering."""

from __future__ import annotations

import http.server
import json
import signal
import threading
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import redis

from relayq.ops.local_provider import ProviderThread
from relayq.producers import SyncProducer
from relayq.streams.codec import encode_message
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message, Priority
from relayq.streams.settings import Settings
from tests.support import (
    SentLog,
    WorkerPool,
    check_order,
    dead_letters,
    delivered_ids,
    pending_total,
    wait_until,
)
from tests.test_validation_decode import CORRUPT, VALID


def test_garbage_entries_are_dead_lettered_once_and_delivery_goes_on(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    provider: ProviderThread,
    workers: WorkerPool,
) -> None:
    partition = keys.partition_of("acme", "c-1")
    normal = keys.stream(partition, Priority.NORMAL)
    sent: SentLog = {("acme", "c-1"): []}
    producer = SyncProducer(settings)

    def send() -> str:
        message_id = producer.send(tenant="acme", conversation="c-1", recipient="+1", payload={})
        sent[("acme", "c-1")].append(message_id)
        return message_id

    send()
    valid = Message(
        id="01HZZZZZZZZZZZZZZZZZZZZZZZ", tenant="acme", conversation="c-1", recipient="+1",
        priority=Priority.NORMAL, payload=b"{}", created_ms=1,
    )  # fmt: skip
    garbage: list[tuple[str, dict[str, bytes]]] = [
        (normal, {"foo": b"bar"}),  # no message field at all
        (normal, {"m": b"\xc1\xc1 not msgpack"}),  # 0xc1 is never valid msgpack
        (normal, {"m": msgspec.msgpack.encode({"hello": "world"})}),  # msgpack, not a Message
        (normal, {"m": encode_message(valid), "extra": b"x"}),  # a message plus a stray field
        (keys.stream(partition, Priority.HIGH), {"m": b""}),  # empty, on another priority
    ]
    poison_ids = set()
    for stream, fields in garbage:
        entry_id: Any = redis_client.xadd(stream, fields)  # type: ignore[arg-type]
        poison_ids.add(entry_id)
    send()

    worker = workers.start(provider.url)
    wait_until(
        lambda: delivered_ids(provider) >= set(sent[("acme", "c-1")]),
        timeout=20,
        message="the messages around the garbage delivered",
    )
    # Sent after the worker met the garbage: the partition is not stuck.
    late = send()
    wait_until(lambda: late in delivered_ids(provider), timeout=20, message="later send delivered")
    assert worker.alive()

    def poison_letters() -> list[dict[str, bytes]]:
        return dead_letters(redis_client, keys)

    letters = poison_letters()
    assert len(letters) == len(garbage)
    assert {letter["origin_id"] for letter in letters} == poison_ids
    for letter in letters:
        assert letter["kind"] == b"poison"
        assert int(letter["attempts"]) == 0
        assert letter["error"]
        assert letter["origin_stream"].decode() in keys.streams(partition)
    assert any(letter.get("entry:foo") == b"bar" for letter in letters)
    assert any(letter.get("entry:m") == b"\xc1\xc1 not msgpack" for letter in letters)
    # Poison was acknowledged: nothing of it stays pending to be seen again.
    wait_until(lambda: pending_total(redis_client, keys) == 0, timeout=10, message="all acked")
    summary: Any = redis_client.xpending(normal, GROUP)
    assert summary["pending"] == 0

    # A second worker generation re-reads the partition (reclaim, then new entries): the
    # garbage is not dead-lettered again.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    workers.start(provider.url)
    last = send()
    wait_until(lambda: last in delivered_ids(provider), timeout=20, message="new worker delivers")
    assert len(poison_letters()) == len(garbage)

    result = check_order(sent, provider.deliveries())
    assert result.delivered == set(sent[("acme", "c-1")])
    assert result.violations == []
    assert result.duplicates == 0
    producer.close()


class RecordingProvider:
    """A plain HTTP server on 127.0.0.1 that keeps every request body it receives, raw
    (whether or not it is JSON), and accepts each with 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        lock = threading.Lock()
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    bodies.append(body)
                    answer = json.dumps({"id": f"rec-{len(bodies)}"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RecordingProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/messages"

    def received_ids(self) -> list[str]:
        """The message id of every body so far, in arrival order ("not JSON" for a body
        that is not a JSON object with an id)."""
        ids = []
        for body in list(self.bodies):
            try:
                ids.append(str(json.loads(body)["id"]))
            except (ValueError, KeyError, TypeError):
                ids.append("not JSON")
        return ids


@pytest.fixture
def recording_provider() -> Iterator[RecordingProvider]:
    provider = RecordingProvider().start()
    try:
        yield provider
    finally:
        provider.stop()


def test_entries_send_would_refuse_are_poison_and_never_reach_the_provider(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    recording_provider: RecordingProvider,
    workers: WorkerPool,
) -> None:
    """Well-formed msgpack Messages that send() would have refused (a payload that is not
    JSON, a NUL in the tenant, a control character in the conversation, ...) written
    straight into the stream, between good messages of the same conversation."""
    normal = keys.stream(keys.partition_of("acme", "c-1"), Priority.NORMAL)
    good: list[str] = []
    expected_fields: dict[Any, str] = {}
    with SyncProducer(settings) as producer:
        for number, (_what, changes, field) in enumerate(CORRUPT):
            good.append(
                producer.send(tenant="acme", conversation="c-1", recipient="+1", payload={})
            )
            message = Message(**{**VALID, "id": f"01HZPOISON{number:016d}", **changes})
            entry_id: Any = redis_client.xadd(normal, {"m": encode_message(message)})
            expected_fields[entry_id] = field
        good.append(producer.send(tenant="acme", conversation="c-1", recipient="+1", payload={}))

    worker = workers.start(recording_provider.url)
    wait_until(
        lambda: set(good) <= set(recording_provider.received_ids()),
        timeout=30,
        message="every good message delivered",
    )
    wait_until(
        lambda: pending_total(redis_client, keys) == 0,
        timeout=30,
        message="every entry acknowledged (delivered or dead-lettered)",
    )
    assert worker.alive()

    letters = dead_letters(redis_client, keys)
    assert {letter["origin_id"] for letter in letters} == set(expected_fields)
    for letter in letters:
        field = expected_fields[letter["origin_id"]]
        assert letter["kind"] == b"poison", letter
        assert int(letter["attempts"]) == 0
        assert f"invalid {field}:".encode() in letter["error"], letter["error"]
    # The provider got the good messages, in send order, and nothing else.
    assert recording_provider.received_ids() == good
