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
from tests.api_support import ApiServer
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, dead_letters, delivered_ids, run_cli, wait_until


def _send_to(
    settings: Settings, tenant: str, count: int, recipient: str, **fields: Any
) -> list[str]:
    with SyncProducer(settings) as producer:
        return [
            producer.send(
                tenant=tenant,
                conversation=f"{tenant}-{n}",
                recipient=recipient,
                payload={"n": n},
                **fields,
            )
            for n in range(count)
        ]


def _show(settings: Settings, message_id: str) -> dict[str, Any]:
    done = run_cli(settings, "message", "show", message_id, "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


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
    api_server: ApiServer,
) -> None:
    settings = settings.replace(backoff_base=600.0, backoff_max=600.0)
    fast = make_provider()
    first = workers.start(fast.url, settings=settings)
    sent = {"B": _send_to(settings, "B", 10, "+15550100")}
    sent["D"] = _send_to(settings, "D", 2, "reject-1")  # answered 400: dead-lettered at once
    sent["R"] = _send_to(settings, "R", 1, "down-1")  # answered 500: retried in 600 s
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
    sent["C"] = _send_to(settings, "C", 5, "+15550100")
    wait_until(lambda: blocking.stats()["requests"] == 5, timeout=30, message="C in flight")
    # Killed, so that nothing more is read: a worker merely stopped (SIGSTOP) would still
    # take entries through the blocking read it left waiting in Redis. Its five sends
    # stay pending, owned by it until its leases run out (30 s): in flight.
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=10)
    sent["A"] = _send_to(settings, "A", 37, "+15550100")
    sent["E"] = _send_to(settings, "E", 3, "+15550100", delay=3600)
    rows = _status(settings)

    def row(tenant: str) -> dict[str, Any]:
        found = rows[("normal", tenant)]
        rates = ("delivered_per_second", "dead_lettered_per_second")
        return {k: v for k, v in found.items() if v and k not in ("priority", "tenant", *rates)}

    # Finished in the last minute: a rate over the 50-60 s window.
    assert 10 / 60 <= rows[("normal", "B")]["delivered_per_second"] <= 10 / 50
    assert 2 / 60 <= rows[("normal", "D")]["dead_lettered_per_second"] <= 2 / 50

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
    _assert_each_message_is_found_in_its_state(settings, sent)
    _assert_the_api_reports_the_same(api_server, rows, sent)


def _assert_the_api_reports_the_same(
    api_server: ApiServer, rows: dict[tuple[str, str], dict[str, Any]], sent: dict[str, list[str]]
) -> None:
    """``GET /v1/stats`` and ``GET /v1/messages/{id}`` say what the CLI said."""
    stats = api_server.call("GET", "/v1/stats").json()
    counted = ("waiting", "in_flight", "retrying", "delayed", "delivered", "dead_lettered")
    by_row = {(r["priority"], r["tenant"]): r for r in stats["rows"]}
    assert set(by_row) == set(rows)
    for key, row in rows.items():
        assert {c: by_row[key][c] for c in counted} == {c: row[c] for c in counted}, key
    assert (stats["waiting"], stats["active"], stats["retrying"]) == (37, 5, 1)
    assert (stats["delayed"], stats["completed"], stats["failed"]) == (3, 10, 2)
    assert stats["tenantConcurrency"] == {"C": 5}
    states = {
        tenant: api_server.call("GET", f"/v1/messages/{ids[-1]}").json()["state"]
        for tenant, ids in sent.items()
    }
    assert states == {
        "A": "accepted", "B": "delivered", "C": "in_flight",
        "D": "dead_lettered", "E": "delayed", "R": "retrying",
    }  # fmt: skip


def _assert_each_message_is_found_in_its_state(
    settings: Settings, sent: dict[str, list[str]]
) -> None:
    """``relayq message show`` finds one message of each tenant in its state."""
    expected = {
        "A": "accepted",
        "B": "delivered",
        "C": "in_flight",
        "D": "dead_lettered",
        "E": "delayed",
        "R": "retrying",
    }
    shown = {tenant: _show(settings, ids[-1]) for tenant, ids in sent.items()}
    assert {tenant: s["state"] for tenant, s in shown.items()} == expected
    for tenant, status in shown.items():
        assert status["message_id"] == sent[tenant][-1]
        assert status["record"]["tenant"] == tenant
        assert status["record"]["conversation"] == f"{tenant}-{len(sent[tenant]) - 1}"
    assert shown["B"]["record"]["attempts"] == 1 and shown["B"]["record"]["worker"]
    # Held by the worker killed with SIGKILL (whether its heartbeat ran out yet depends
    # on timing): a different worker from the one that delivered B's.
    assert shown["C"]["record"]["worker"]
    assert shown["C"]["record"]["worker"] != shown["B"]["record"]["worker"]
    assert shown["D"]["record"]["dlq_id"] and shown["D"]["record"]["kind"] == "permanent"
    assert shown["E"]["record"]["due_ms"] > shown["E"]["record"]["created_ms"] + 3_500_000
    retrying = shown["R"]["record"]
    assert retrying["attempts"] == 1 and retrying["error"] and retrying["kind"]
    assert retrying["next_attempt_ms"] > retrying["at_ms"] + 60_000  # backoff 600 s, jittered


def test_message_show_rejects_a_malformed_id_and_reports_an_unknown_one(
    settings: Settings,
) -> None:
    bad = run_cli(settings, "message", "show", "not-an-id")
    assert bad.returncode == 2 and "message id" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run_cli(settings, "message", "show", "01KBM3Z6X5Q8N4T2V7W9Y0A1B2")
    assert unknown.returncode == 1 and "no message 01KBM3Z6X5Q8N4T2V7W9Y0A1B2" in unknown.stderr


def test_status_table_and_json_on_an_empty_namespace(settings: Settings) -> None:
    table = run_cli(settings, "status")
    assert table.returncode == 0, table.stderr
    assert "waiting" in table.stdout
    document = json.loads(run_cli(settings, "status", "--json").stdout)
    assert document["rows"] == [] and document["dead_letter_entries"] == 0
