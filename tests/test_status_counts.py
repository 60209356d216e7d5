"""``relayq status``: exact counts of a known state built through the public API, with
real worker processes and real HTTP providers (issue 14, item 1): 37 waiting for tenant
A, 5 in flight held by a provider that blocks, 1 retrying, 2 dead-lettered, 3 delayed and
10 delivered — and the delivered / dead-lettered counters kept in Redis with the acks."""

from __future__ import annotations

import json
import signal
from typing import Any

import redis

from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, dead_letters, delivered_ids, run_cli, wait_until


def _send_to(settings: Settings, tenant: str, count: int, recipient: str, **fields: Any) -> None:
    with SyncProducer(settings) as producer:
        for n in range(count):
            producer.send(
                tenant=tenant,
                conversation=f"{tenant}-{n}",
                recipient=recipient,
                payload={"n": n},
                **fields,
            )


def _dead_letter_ids(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    ids: list[dict[str, str]] = []
    for partition in range(keys.partitions):
        entries: Any = client.xrange(keys.dead_letter(partition))
        ids.extend({"id": entry_id.decode()} for entry_id, _fields in entries)
    return ids


def _status(settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    done = run_cli(settings, "status", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    return {(row["priority"], row["tenant"]): row for row in document["rows"]}


def test_status_reports_a_known_state_exactly(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(backoff_base=600.0, backoff_max=600.0)
    fast = make_provider()
    first = workers.start(fast.url, settings=settings)
    _send_to(settings, "B", 10, "+15550100")
    _send_to(settings, "D", 2, "reject-1")  # answered 400: dead-lettered at once
    _send_to(settings, "R", 1, "down-1")  # answered 500: retried in 600 s
    wait_until(lambda: len(delivered_ids(fast)) == 10, timeout=30, message="B delivered")
    wait_until(lambda: len(dead_letters(redis_client, keys)) == 2, timeout=30, message="D")
    wait_until(
        lambda: sum(redis_client.hlen(keys.attempts(p)) for p in range(keys.partitions)) == 1,
        timeout=30,
        message="R's failed attempt recorded",
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0

    blocking = make_provider(latency=60.0)
    second = workers.start(blocking.url, settings=settings)
    _send_to(settings, "C", 5, "+15550100")
    wait_until(lambda: blocking.stats()["requests"] == 5, timeout=30, message="C in flight")
    # Killed, so that nothing more is read: a worker merely stopped (SIGSTOP) would still
    # take entries through the blocking read it left waiting in Redis. Its five sends
    # stay pending, owned by it until its leases run out (30 s): in flight.
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=10)
    _send_to(settings, "A", 37, "+15550100")
    _send_to(settings, "E", 3, "+15550100", delay=3600)
    rows = _status(settings)

    def row(tenant: str) -> dict[str, Any]:
        found = rows[("normal", tenant)]
        return {k: v for k, v in found.items() if v and k not in ("priority", "tenant")}

    waiting = row("A")
    assert waiting.pop("oldest_waiting_ms") > 0
    assert waiting == {"waiting": 37}
    assert row("B") == {"delivered": 10}
    assert row("C") == {"in_flight": 5}
    assert row("D") == {"dead_lettered": 2}
    assert row("E") == {"delayed": 3}
    assert row("R") == {"retrying": 1}
    assert set(rows) == {("normal", t) for t in "ABCDER"}

    # Each dead letter left its outcome record, naming its dead-letter entry.
    records = [
        json.loads(blob)
        for p in range(keys.partitions)
        for blob in redis_client.hvals(keys.outcomes(p))
    ]
    dead = [r for r in records if r["state"] == "dead_lettered"]
    assert len(dead) == 2 and all(r["tenant"] == "D" and r["kind"] == "permanent" for r in dead)
    assert {r["dlq_id"] for r in dead} == {d["id"] for d in _dead_letter_ids(redis_client, keys)}
    assert sum(r["state"] == "delivered" for r in records) == 10


def test_status_table_and_json_on_an_empty_namespace(settings: Settings) -> None:
    table = run_cli(settings, "status")
    assert table.returncode == 0, table.stderr
    assert "waiting" in table.stdout
    document = json.loads(run_cli(settings, "status", "--json").stdout)
    assert document["rows"] == [] and document["dead_letter_entries"] == 0
