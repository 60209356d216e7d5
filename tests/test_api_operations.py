"""The HTTP API's repairs and controls against a real ``relayq api`` process (issue 14,
items 5-6): a dead letter replayed through the API is delivered once and leaves the DLQ
once, also when the replay is sent twice; tenant keys repair only their own tenant; pause,
resume, limits and schedules do what the CLI's do; messages by state page without overlap."""

from __future__ import annotations

from typing import Any

import redis

from relayq.ops.pending_release import RELEASED_CONSUMER
from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, pending_total, run_cli, wait_until
from tests.test_repair_support import kill_when_leases_expired, send


def _send(settings: Settings, tenant: str, count: int) -> list[str]:
    with SyncProducer(settings) as producer:
        return [
            producer.send(
                tenant=tenant,
                conversation=f"{tenant}-c{n % 2}",
                recipient="+1555",
                payload={"n": n},
            )
            for n in range(count)
        ]


def _dead_letter_all(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    failing = make_provider(fail_rate=1.0)  # every request answered 503; max_attempts 1
    assert workers.start(failing.url, burst=True, settings=settings).wait(timeout=60) == 0


def _dlq_length(redis_client: redis.Redis, keys: Keys) -> int:
    return sum(int(redis_client.xlen(keys.dead_letter(p))) for p in range(keys.partitions))


def test_replay_through_the_api_delivers_once_even_when_sent_twice(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    settings = settings.replace(max_attempts=1)
    acme, bolt = _send(settings, "acme", 3), _send(settings, "bolt", 2)
    _dead_letter_all(settings, make_provider, workers)
    assert _dlq_length(redis_client, keys) == 5

    acme_key = api_server.create_key("--tenant", "acme")
    listed = api_server.call("GET", "/v1/dlq", acme_key, params={"limit": 2})
    assert listed.status_code == 200, listed.text
    page: dict[str, Any] = listed.json()
    second = api_server.call("GET", "/v1/dlq", acme_key, params={"limit": 2, "after": page["next"]})
    seen = [i["message_id"] for i in page["items"] + second.json()["items"]]
    assert sorted(seen) == sorted(acme) and second.json()["next"] is None

    # A tenant key cannot see or replay another tenant's dead letter.
    assert api_server.call("GET", f"/v1/dlq/{bolt[0]}", acme_key).status_code == 404
    refused = api_server.call("POST", "/v1/dlq/replay", acme_key, json={"ids": [bolt[0]]})
    assert refused.status_code == 404
    assert api_server.call("POST", "/v1/dlq/replay", acme_key, json={"all": True}).json() == {
        "replayed": 3, "gone": 0, "refused": [],
    }  # fmt: skip
    again = api_server.call("POST", "/v1/dlq/replay", acme_key, json={"all": True})
    assert again.json()["replayed"] == 0
    assert _dlq_length(redis_client, keys) == 2  # bolt's stay

    fixed = make_provider()
    assert workers.start(fixed.url, burst=True, settings=settings).wait(timeout=60) == 0
    assert sorted(d.message_id for d in fixed.deliveries()) == sorted(acme)  # each once

    # Delete one of bolt's by its message id, purge the other (admin).
    assert api_server.call("DELETE", f"/v1/dlq/{bolt[0]}").json() == {"deleted": 1, "gone": 0}
    purged = api_server.call("POST", "/v1/dlq/purge", json={"older_than_seconds": 0})
    assert purged.json() == {"deleted": 1} and _dlq_length(redis_client, keys) == 0


def test_pause_resume_and_limits_through_the_api(settings: Settings, api_server: ApiServer) -> None:
    acme_key = api_server.create_key("--tenant", "acme")
    paused = api_server.call("POST", "/v1/pause", acme_key, json={"tenant": "acme"})
    assert paused.status_code == 200 and paused.json()["scope"] == "tenant:acme"
    assert "tenant:acme" in run_cli(settings, "paused").stdout
    other = api_server.call("POST", "/v1/pause", acme_key, json={"tenant": "bolt"})
    assert other.status_code == 403
    assert api_server.call("POST", "/v1/pause", acme_key, json={}).status_code == 403
    resumed = api_server.call("POST", "/v1/resume", acme_key, json={"tenant": "acme"})
    assert resumed.json() == {"scope": "tenant:acme", "changed": True}
    assert api_server.call("GET", "/v1/paused").json() == []

    changed = api_server.call("PUT", "/v1/limits", json={"tenant": "acme", "cap": 3, "rate": 2})
    assert changed.json() == {"cap": 3, "rate": 2.0, "burst": None}
    assert (
        api_server.call("GET", "/v1/limits", acme_key, params={"tenant": "acme"}).json()["cap"] == 3
    )
    assert api_server.call("PUT", "/v1/limits", acme_key, json={"rate": 1}).status_code == 403
    bad = api_server.call("PUT", "/v1/limits", json={"tenant": "acme", "rate": -1})
    assert bad.status_code == 422 and bad.json()["field"] == "rate"


def test_schedules_through_the_api(settings: Settings, api_server: ApiServer) -> None:
    body = {"every": 60, "tenant": "acme", "conversation": "c", "recipient": "+1", "payload": {}}
    made = api_server.call("PUT", "/v1/schedules/daily", json=body)
    assert made.status_code == 200 and made.json()["every_ms"] == 60_000
    listed = api_server.call("GET", "/v1/schedules").json()
    assert [s["name"] for s in listed] == ["daily"] and listed[0]["next_due_ms"] > 0
    assert "daily" in run_cli(settings, "schedules").stdout
    bad = api_server.call("PUT", "/v1/schedules/x", json={**body, "cron": "nope", "every": None})
    assert bad.status_code == 422
    assert api_server.call("DELETE", "/v1/schedules/daily").status_code == 200
    assert api_server.call("DELETE", "/v1/schedules/daily").status_code == 404


def test_delivered_messages_page_newest_first_without_overlap(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    ids = _send(settings, "acme", 7) + _send(settings, "bolt", 5)
    provider = make_provider()
    assert workers.start(provider.url, burst=True, settings=settings).wait(timeout=60) == 0
    pages, after = [], None
    while True:
        params: dict[str, Any] = {"state": "delivered", "limit": 5}
        if after:
            params["after"] = after
        page = api_server.call("GET", "/v1/messages", params=params).json()
        pages.append(page["items"])
        after = page["next"]
        if after is None:
            break
    listed = [item["message_id"] for items in pages for item in items]
    assert sorted(listed) == sorted(ids) and len(listed) == len(set(listed))
    times = [item["at_ms"] for items in pages for item in items]
    assert times == sorted(times, reverse=True)
    acme_key = api_server.create_key("--tenant", "acme")
    own = api_server.call(
        "GET", "/v1/messages", acme_key, params={"state": "delivered", "limit": 50}
    )
    assert {item["tenant"] for item in own.json()["items"]} == {"acme"}
    waiting = api_server.call("GET", "/v1/messages", params={"state": "waiting"})
    assert waiting.status_code == 200 and waiting.json() == {"items": [], "next": None}
    unknown = api_server.call("GET", "/v1/messages", params={"state": "lost"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "state"


def test_pending_through_the_api_is_scoped_to_a_tenant_keys_tenant(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    blocking = make_provider(latency=60.0)
    holder = workers.start(blocking.url)
    acme, bolt = send(settings, "acme", 3), send(settings, "bolt", 2)
    wait_until(lambda: blocking.stats()["requests"] == 5, timeout=30, message="5 in flight")
    acme_key, reader = (
        api_server.create_key("--tenant", "acme"),
        api_server.create_key("--read-only"),
    )

    every = api_server.call("GET", "/v1/pending").json()
    assert sorted(e["message_id"] for e in every["entries"]) == sorted(acme + bolt)
    own = api_server.call("GET", "/v1/pending", acme_key).json()
    assert sorted(e["message_id"] for e in own["entries"]) == sorted(acme)
    assert own["partitions"] == [] and own["consumers"] == []  # they count bolt's too
    other = api_server.call("GET", "/v1/pending", acme_key, params={"tenant": "bolt"})
    assert other.status_code == 403

    kill_when_leases_expired(holder, redis_client, keys)
    refused = api_server.call("POST", "/v1/pending/release", reader, json={})
    assert refused.status_code == 403
    released = api_server.call("POST", "/v1/pending/release", acme_key, json={}).json()
    assert released["released"] == 3
    assert pending_total(redis_client, keys, RELEASED_CONSUMER) == 3  # acme's only
    assert api_server.call("POST", "/v1/pending/release", acme_key,
                           json={"tenant": "bolt"}).status_code == 403  # fmt: skip
