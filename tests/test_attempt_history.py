"""Every attempt of a message in its outcome record (issue 16: the message page shows
"every attempt with its error"): a retried message keeps its failed attempts (the last
ten, throttles noted as using none) into its delivered or dead-lettered record, shown by
``GET /v1/messages/{id}``, ``relayq message show`` and the dashboard's message page."""

from __future__ import annotations

import asyncio
import collections
import html
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from relayq.consumers.acknowledger import Acknowledger
from relayq.consumers.attempt_records import AttemptRecords
from relayq.consumers.dead_letters import DeadLetters
from relayq.consumers.envelope import Envelope, PartitionState
from relayq.ops.attempt_rows import attempt_rows
from relayq.ops.message_view import show_message
from relayq.ops.receipt_store import apply_receipts
from relayq.producers import SyncProducer
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message
from relayq.streams.outcome import HISTORY_KEEP, NOTE_ERROR_CHARS, decode_record
from relayq.streams.receipts import Receipt
from relayq.streams.redis_client import create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.dashboard_support import signed_in
from tests.support import WorkerPool, run_cli

LEVEL = "normal"
BUSY = "<b>busy</b>"
"""What the flaky provider's 500s say: markup a page must show as text."""


class FlakyProvider:
    """Answers 500 to a message's first two requests (always, for a ``down-`` recipient),
    then 200 with a provider id."""

    def __init__(self) -> None:
        seen: collections.Counter[str] = collections.Counter()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen[body["id"]] += 1
                tries = seen[body["id"]]
                if body["recipient"].startswith("down-") or tries <= 2:
                    status, answer = 500, f"{BUSY} {tries}".encode()
                else:
                    status, answer = 200, json.dumps({"id": f"prov-{body['id']}"}).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/messages"


@pytest.fixture
def flaky_provider() -> Iterator[FlakyProvider]:
    provider = FlakyProvider()
    try:
        yield provider
    finally:
        provider.stop()


def _record(redis_client: redis.Redis, keys: Keys, message_id: str) -> dict[str, Any]:
    for partition in range(keys.partitions):
        blob: Any = redis_client.hget(keys.outcomes(partition), message_id)
        if blob is not None:
            decode_record(blob)  # it still decodes as an OutcomeRecord
            found: dict[str, Any] = json.loads(blob)
            return found
    raise AssertionError(f"no record of {message_id}")


def _notes(record: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(note["attempt"], note["kind"], note["error"]) for note in record["history"]]


def test_a_message_retried_twice_shows_both_failures_wherever_it_is_looked_up(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    flaky_provider: FlakyProvider,
    workers: WorkerPool,
    api_server: ApiServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings.replace(max_attempts=3)
    with SyncProducer(settings) as producer:
        retried = producer.send(
            tenant="acme", conversation="c1", recipient="+15550001", payload={"n": 1}
        )
        dead = producer.send(
            tenant="acme", conversation="c2", recipient="down-15550002", payload={"n": 2}
        )
    assert workers.start(flaky_provider.url, burst=True, settings=settings).wait(timeout=60) == 0

    record = _record(redis_client, keys, retried)
    assert record["state"] == "delivered" and record["attempts"] == 3
    assert record["provider_message_id"] == f"prov-{retried}"
    assert _notes(record) == [
        (1, "http_500", f"HTTP 500: {BUSY} 1"),
        (2, "http_500", f"HTTP 500: {BUSY} 2"),
    ]
    assert all(note["at_ms"] > 0 and note["worker"] for note in record["history"])
    # Dead-lettered: the attempts before the last; the last is the record's own error.
    record = _record(redis_client, keys, dead)
    assert record["state"] == "dead_lettered" and record["attempts"] == 3
    assert [(n, kind) for n, kind, _ in _notes(record)] == [(1, "http_500"), (2, "http_500")]
    assert f"{BUSY} 3" in record["error"] and record["dlq_id"]

    shown = api_server.call("GET", f"/v1/messages/{retried}")
    assert shown.status_code == 200, shown.text
    assert [note["attempt"] for note in shown.json()["record"]["history"]] == [1, 2]
    schemas = json.loads(api_server.call("GET", "/openapi.json", "").text)["components"]
    assert "history" in schemas["schemas"]["OutcomeRecord"]["properties"]
    assert "error" in schemas["schemas"]["AttemptNote"]["properties"]

    assert show_message(settings, retried, as_json=False) == 0
    printed = capsys.readouterr().out
    assert f"HTTP 500: {BUSY} 1" in printed and f"HTTP 500: {BUSY} 2" in printed
    assert f"provider id prov-{retried}" in printed

    with signed_in(api_server, api_server.admin_key) as admin:
        page = admin.get(f"/messages/{dead}")
    assert page.status_code == 200, page.text
    table = page.text.split('id="attempts"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 4  # the heading, attempts 1 and 2, the dead-lettering
    assert html.escape(f"HTTP 500: {BUSY} 2", quote=False) in table and "<b>" not in table
    assert "dead_lettered: exhausted" in table


# -- the scripts, on one pending entry ------------------------------------------------------


def _envelope(redis_client: redis.Redis, keys: Keys) -> Envelope:
    stream = keys.stream(0, LEVEL)
    redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    message = Message(
        id="M001", tenant="acme", conversation="c1", recipient="+15550100", priority=LEVEL,
        payload=b"{}", created_ms=1,
    )  # fmt: skip
    entry_id: Any = redis_client.xadd(stream, {b"m": b"x"})
    redis_client.xreadgroup(GROUP, "w1", {stream: ">"})
    state = PartitionState(partition=0, token="t", lease_deadline=0.0)
    return Envelope(state=state, stream=stream, entry_id=entry_id, message=message)


def _run(settings: Settings, keys: Keys, steps: Any) -> None:
    """``steps(records, acks, dead_letters, client)``, a coroutine, on a client of its own."""

    async def main() -> None:
        client = create_client(settings)
        try:
            scripts = Scripts(client)
            await steps(
                AttemptRecords(scripts, keys, settings, "w1"),
                Acknowledger(client, scripts, keys, settings, "w1"),
                DeadLetters(scripts, keys, "w1", settings),
                client,
            )
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_history_keeps_the_last_ten_attempts_their_errors_cut_short(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    envelope = _envelope(redis_client, keys)

    async def steps(records: AttemptRecords, *_: Any) -> None:
        for n in range(1, 13):
            envelope.failed_attempts = n
            await records.failed(envelope, 1, f"HTTP 500: try {n} " + "x" * 400, "http_500")

    _run(settings, keys, steps)
    record = _record(redis_client, keys, "M001")
    assert record["state"] == "retrying" and record["attempts"] == 12
    assert [note["attempt"] for note in record["history"]] == list(range(3, 13))
    assert len(record["history"]) == HISTORY_KEEP
    assert all(len(note["error"]) == NOTE_ERROR_CHARS for note in record["history"])
    assert record["history"][-1]["error"].startswith("HTTP 500: try 12 ")


def test_a_throttle_is_noted_as_using_no_attempt(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    envelope = _envelope(redis_client, keys)

    async def steps(records: AttemptRecords, acks: Acknowledger, *_: Any) -> None:
        envelope.failed_attempts = 1
        await records.failed(envelope, 1, "HTTP 503: down", "http_503")
        await records.throttled(envelope, 0.5, "HTTP 429: slow down")
        envelope.failed_attempts = 1
        acks.ack(envelope, provider_message_id="prov-1")
        await acks.drain()

    _run(settings, keys, steps)
    record = _record(redis_client, keys, "M001")
    assert _notes(record) == [
        (1, "http_503", "HTTP 503: down"),
        (2, "throttled", "HTTP 429: slow down"),
    ]
    rows = attempt_rows(decode_record(json.dumps(record).encode()))
    assert [(row.attempt, row.outcome, row.counted) for row in rows] == [
        (1, "http_503", True),
        (2, "throttled", False),
        (2, "delivered", True),
    ]


def test_a_failed_receipt_changes_the_records_error_not_a_notes(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    """The notes hold keys the record has too (error, kind): the scripts that edit records
    as text must find the record's own, whichever comes first in the text."""
    envelope = _envelope(redis_client, keys)
    receipt = Receipt(
        message_id="M001", provider_message_id="prov-1", status="failed", at_ms=5,
        error="whatsapp 131026: undeliverable",
    )  # fmt: skip

    async def steps(records: AttemptRecords, acks: Acknowledger, _: Any, client: Any) -> None:
        envelope.failed_attempts = 1
        await records.failed(envelope, 1, "HTTP 500: first", "http_500")
        # The receipt races the acknowledgement: it lands on the retrying record.
        await apply_receipts(client, keys, [receipt], 0)
        acks.ack(envelope, provider_message_id="prov-1")
        await acks.drain()

    _run(settings, keys, steps)
    record = _record(redis_client, keys, "M001")
    assert record["state"] == "delivered" and record["receipt"] == "failed"
    assert record["error"] == "whatsapp 131026: undeliverable"
    assert _notes(record) == [(1, "http_500", "HTTP 500: first")]


def test_a_dead_lettered_record_keeps_the_history_and_its_dead_letter_id(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    envelope = _envelope(redis_client, keys)

    async def steps(records: AttemptRecords, _: Any, dead_letters: DeadLetters, *__: Any) -> None:
        for n in (1, 2):
            envelope.failed_attempts = n
            await records.failed(envelope, 1, f'HTTP 500: "quoted" [{n}], {{n}}', "http_500")
        moved = await dead_letters.move(
            envelope.stream, envelope.entry_id, error="HTTP 500: last", kind="exhausted",
            attempts=3, message=envelope.message,
        )  # fmt: skip
        assert moved

    _run(settings, keys, steps)
    record = _record(redis_client, keys, "M001")
    assert record["state"] == "dead_lettered" and record["error"] == "HTTP 500: last"
    assert _notes(record) == [
        (1, "http_500", 'HTTP 500: "quoted" [1], {n}'),
        (2, "http_500", 'HTTP 500: "quoted" [2], {n}'),
    ]
    dlq: Any = redis_client.xrange(keys.dead_letter(0))
    assert record["dlq_id"] == dlq[0][0].decode()


def test_a_record_written_before_history_decodes_and_lists_its_state(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    old = (
        b'{"state":"retrying","tenant":"acme","conversation":"c1","priority":"normal",'
        b'"at_ms":7,"partition":0,"attempts":1,"error":"HTTP 500: old","kind":"http_500"}'
    )
    record = decode_record(old)
    assert record.history is None
    assert [(row.attempt, row.outcome, row.detail) for row in attempt_rows(record)] == [
        (1, "http_500", "HTTP 500: old")
    ]
    # The scripts read it as the record a history starts from.
    envelope = _envelope(redis_client, keys)
    redis_client.hset(keys.outcomes(0), "M001", old)

    async def steps(records: AttemptRecords, acks: Acknowledger, *_: Any) -> None:
        envelope.failed_attempts = 2
        await records.failed(envelope, 1, "HTTP 500: new", "http_500")
        acks.ack(envelope, provider_message_id="prov-1")
        await acks.drain()

    _run(settings, keys, steps)
    assert _notes(_record(redis_client, keys, "M001")) == [(2, "http_500", "HTTP 500: new")]


def test_message_show_prints_names_and_errors_as_text_not_markup(settings: Settings) -> None:
    """A tenant or conversation holding rich markup (``[red]``) is printed as written."""
    with SyncProducer(settings) as producer:
        sent = producer.send(
            tenant="acme[red]", conversation="c[bold]1", recipient="+1555", payload={}
        )
    done = run_cli(settings, "message", "show", sent)
    assert done.returncode == 0, done.stderr
    assert "acme[red]" in done.stdout and "c[bold]1" in done.stdout
