"""The HTTP API from outside (issue 14, items 6-7): a real ``relayq api`` process on
127.0.0.1, a real redis-server, real workers and providers.

Sending one message or a batch and following it to delivery; bad requests answered 422
naming the field with nothing written; 401 / 403 / 404 by key; a key never in the log, a
response or Redis; the OpenAPI document and ``/docs``; health for probes; and stats of a
state built through the API, exactly.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import redis

from relayq.ops.local_provider import ProviderThread
from relayq.streams.settings import Settings
from tests.api_support import ApiServer, redis_contents
from tests.support import WorkerPool, delivered_ids, run_cli, wait_until

_COUNTED = ("waiting", "in_flight", "retrying", "delayed", "delivered", "dead_lettered")
_UNKNOWN_KEY = "rq_0123456789ab_" + "A" * 43
"""A key of the right shape that was never created."""


def _message(tenant: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "conversation": f"{tenant}-{n % 2}",
        "recipient": "+15550100",
        "payload": {"n": n, "text": f"secret order {tenant}-{n}"},
        **fields,
    }


def _send(api: ApiServer, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return api.call("POST", "/v1/messages", key, json=body)


def _send_each(api: ApiServer, tenant: str, count: int, **fields: Any) -> list[str]:
    """``count`` messages for ``tenant``, one request each; their ids."""
    ids = []
    for n in range(count):
        sent = _send(api, _message(tenant, n, **fields))
        assert sent.status_code == 202, sent.text
        ids.append(sent.json()["id"])
    return ids


def _state(api: ApiServer, message_id: str) -> str:
    shown = api.call("GET", f"/v1/messages/{message_id}")
    assert shown.status_code == 200, shown.text
    state: str = shown.json()["state"]
    return state


def _cli_json(settings: Settings, *args: str) -> Any:
    done = run_cli(settings, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    """An error answered ``status`` with a JSON ``Problem`` (naming ``field`` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    problem = response.json()
    assert problem["status"] == status and problem["error"]
    if field is not None:
        assert problem.get("field") == field, problem


# -- sending ------------------------------------------------------------------------------


def test_one_message_and_a_batch_are_queued_then_followed_to_delivery(
    settings: Settings, api_server: ApiServer, provider: ProviderThread, workers: WorkerPool
) -> None:
    one = _send(api_server, _message("acme"))
    assert one.status_code == 202, one.text
    one_id = one.json()["id"]
    assert _state(api_server, one_id) == "accepted"
    assert _cli_json(settings, "message", "show", one_id)["state"] == "accepted"

    items = [_message("acme", 1), _message("acme", 2), _message("acme", 3, priority="nope")]
    items.append(_message("bolt", 4))
    batch = _send(api_server, {"messages": items})
    assert batch.status_code == 202, batch.text
    accepted = batch.json()
    assert (accepted["accepted"], accepted["refused"]) == (3, 1)
    results = accepted["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    refused = results[2]
    assert refused["field"] == "priority" and "nope" in refused["error"] and "id" not in refused
    ids = [r["id"] for r in results if "id" in r]
    assert len(set(ids)) == 3 and all("error" not in r for i, r in enumerate(results) if i != 2)
    assert {_state(api_server, i) for i in ids} == {"accepted"}
    progress = api_server.call("GET", f"/v1/batches/{accepted['batch_id']}").json()
    assert (progress["total"], progress["requested"], progress["refused"]) == (3, 4, 1)
    assert (progress["pending"], progress["delivered"], progress["failed"]) == (3, 0, 0)
    assert sorted(progress["tenants"]) == ["acme", "bolt"]

    workers.start(provider.url, settings=settings)
    wait_until(lambda: len(delivered_ids(provider)) == 4, timeout=30, message="delivered")
    assert delivered_ids(provider) == {one_id, *ids}
    assert {_state(api_server, i) for i in (one_id, *ids)} == {"delivered"}

    def batch_done() -> dict[str, Any]:
        done: dict[str, Any] = api_server.call("GET", f"/v1/batches/{accepted['batch_id']}").json()
        return done

    wait_until(lambda: batch_done()["delivered"] == 3, timeout=10, message="batch counted")
    assert (batch_done()["pending"], batch_done()["failed"]) == (0, 0)


# -- bad requests -------------------------------------------------------------------------

_VALID = _message("acme")


def _without(field: str) -> bytes:
    return json.dumps({k: v for k, v in _VALID.items() if k != field}).encode()


def _with(**changed: Any) -> bytes:
    return json.dumps({**_VALID, **changed}).encode()


_BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed JSON", b'{"tenant": "acme", ', "body"),
    ("not JSON at all", b"hello", "body"),
    ("missing tenant", _without("tenant"), "tenant"),
    ("missing recipient", _without("recipient"), "recipient"),
    ("missing payload", _without("payload"), "payload"),
    ("empty tenant", _with(tenant=""), "tenant"),
    ("tenant a number", _with(tenant=5), "tenant"),
    ("conversation a list", _with(conversation=["c"]), "conversation"),
    ("delay a string", _with(delay="soon"), "delay"),
    ("an empty batch", json.dumps({"messages": []}).encode(), "messages"),
]


def test_bad_requests_are_422_naming_the_field_and_write_nothing(
    settings: Settings, api_server: ApiServer, redis_client: redis.Redis
) -> None:
    before = redis_contents(redis_client)
    headers = {"content-type": "application/json"}
    for case, body, field in _BAD_BODIES:
        answered = api_server.call("POST", "/v1/messages", content=body, headers=headers)
        try:
            _assert_problem(answered, 422, field)
        except AssertionError as failed:
            raise AssertionError(f"{case}: {failed}") from None
        assert redis_contents(redis_client) == before, f"{case}: something was written"

    unknown = _send(api_server, {**_VALID, "bogus": 1})
    _assert_problem(unknown, 422)
    assert "bogus" in unknown.json()["error"]
    assert redis_contents(redis_client) == before

    status = _cli_json(settings, "status")
    assert status["rows"] == [] and status["dead_letter_entries"] == 0


def test_an_unknown_field_is_named(api_server: ApiServer) -> None:
    _assert_problem(_send(api_server, {**_VALID, "bogus": 1}), 422, "bogus")


def test_a_batch_item_that_fails_the_schema_is_refused_alone(
    api_server: ApiServer,
) -> None:
    items = [_message("acme", 0), {**_message("acme", 1), "tenant": ""}]
    batch = _send(api_server, {"messages": items})
    assert batch.status_code == 202, batch.text
    results = batch.json()["results"]
    assert "id" in results[0] and results[1]["field"] == "tenant"


# -- keys ---------------------------------------------------------------------------------


def test_requests_without_a_valid_key_are_401(settings: Settings, api_server: ApiServer) -> None:
    revoked = api_server.create_key("--tenant", "acme")
    done = run_cli(settings, "keys", "revoke", revoked.split("_")[1])
    assert done.returncode == 0, done.stderr
    for case, key in [
        ("no key", ""),
        ("malformed", "not-a-key"),
        ("malformed with the prefix", "rq_zz_secret"),
        ("unknown", _UNKNOWN_KEY),
        ("revoked", revoked),
    ]:
        for method, path in [("GET", "/v1/stats"), ("POST", "/v1/messages")]:
            answered = api_server.call(method, path, key, json=_message("acme"))
            assert answered.status_code == 401, (case, method, answered.text)
            _assert_problem(answered, 401)
    assert _cli_json(settings, "status")["rows"] == []

    tenant_key = api_server.create_key("--tenant", "acme")
    with httpx.Client(base_url=api_server.url, headers={"X-API-Key": tenant_key}) as client:
        assert client.get("/v1/stats").status_code == 200


def test_a_tenant_key_sends_and_reads_only_its_own_tenant(
    api_server: ApiServer, redis_client: redis.Redis
) -> None:
    acme = api_server.create_key("--tenant", "acme")
    [bolt_id] = _send_each(api_server, "bolt", 1)
    bolt_batch = _send(api_server, {"messages": [_message("bolt", 1)]}).json()["batch_id"]
    before = redis_contents(redis_client)

    _assert_problem(_send(api_server, _message("bolt"), acme), 403)
    mixed = {"messages": [_message("acme", 0), _message("bolt", 1)]}
    _assert_problem(_send(api_server, mixed, acme), 403)
    assert redis_contents(redis_client) == before

    hidden = api_server.call("GET", f"/v1/messages/{bolt_id}", acme)
    _assert_problem(hidden, 404)
    assert "bolt" not in hidden.text and "secret order" not in hidden.text
    _assert_problem(api_server.call("GET", f"/v1/batches/{bolt_batch}", acme), 404)

    own = _send(api_server, _message("acme"), acme)
    assert own.status_code == 202, own.text
    shown = api_server.call("GET", f"/v1/messages/{own.json()['id']}", acme)
    assert shown.status_code == 200 and shown.json()["record"]["tenant"] == "acme"


def test_stats_show_a_tenant_key_its_own_rows_and_an_admin_all(api_server: ApiServer) -> None:
    _send_each(api_server, "acme", 2)
    _send_each(api_server, "bolt", 3)
    acme = api_server.create_key("--tenant", "acme")

    own = api_server.call("GET", "/v1/stats", acme).json()
    assert [(r["tenant"], r["waiting"]) for r in own["rows"]] == [("acme", 2)]
    assert own["waiting"] == 2 and own["priorities"]["normal"]["waiting"] == 2
    asked = api_server.call("GET", "/v1/stats", acme, params={"tenant": "acme"}).json()
    assert [(r["tenant"], r["waiting"]) for r in asked["rows"]] == [("acme", 2)]
    _assert_problem(api_server.call("GET", "/v1/stats", acme, params={"tenant": "bolt"}), 403)

    everything = api_server.call("GET", "/v1/stats").json()
    assert {(r["tenant"], r["waiting"]) for r in everything["rows"]} == {("acme", 2), ("bolt", 3)}
    assert everything["waiting"] == 5
    one = api_server.call("GET", "/v1/stats", params={"tenant": "bolt"}).json()
    assert [(r["tenant"], r["waiting"]) for r in one["rows"]] == [("bolt", 3)]


def test_a_read_only_key_reads_everything_and_changes_nothing(
    api_server: ApiServer, redis_client: redis.Redis
) -> None:
    [acme_id] = _send_each(api_server, "acme", 1)
    reader = api_server.create_key("--read-only")
    before = redis_contents(redis_client)

    stats = api_server.call("GET", "/v1/stats", reader)
    assert stats.status_code == 200 and stats.json()["waiting"] == 1
    assert api_server.call("GET", f"/v1/messages/{acme_id}", reader).json()["state"] == "accepted"
    _assert_problem(_send(api_server, _message("acme"), reader), 403)
    _assert_problem(_send(api_server, {"messages": [_message("acme")]}, reader), 403)
    assert redis_contents(redis_client) == before


def test_a_key_is_never_in_the_log_a_response_or_redis(
    settings: Settings, api_server: ApiServer, redis_client: redis.Redis
) -> None:
    tenant = api_server.create_key("--tenant", "acme")
    reader = api_server.create_key("--read-only")
    revoked = api_server.create_key("--tenant", "bolt")
    assert run_cli(settings, "keys", "revoke", revoked.split("_")[1]).returncode == 0
    keys = [api_server.admin_key, tenant, reader, revoked]
    answers = []
    for key in keys:
        answers += [
            _send(api_server, _message("acme"), key),
            _send(api_server, _message("bolt"), key),
            _send(api_server, {"messages": [_message("acme"), _message("bolt", 1)]}, key),
            _send(api_server, {**_VALID, "tenant": 5}, key),
            api_server.call("GET", "/v1/stats", key),
            api_server.call("GET", "/v1/stats", key, params={"tenant": "bolt"}),
            api_server.call("GET", "/v1/messages/01KBM3Z6X5Q8N4T2V7W9Y0A1B2", key),
            api_server.call("GET", "/v1/messages/not-an-id", key),
            api_server.call("GET", "/v1/health", key),
        ]
        answers.append(api_server.call("GET", "/v1/stats", key[:-1]))  # a near miss
    statuses = {answer.status_code for answer in answers}
    assert {202, 200, 401, 403, 404, 422} <= statuses  # every path was taken

    log = api_server.log()
    stored = redis_contents(redis_client)
    bodies = "\n".join(answer.text for answer in answers)
    for key in keys:
        secret = key.split("_", 2)[2]
        assert secret not in log and secret not in bodies
        assert secret.encode() not in stored


# -- documents and probes -----------------------------------------------------------------


def test_the_openapi_document_and_the_docs_page(api_server: ApiServer) -> None:
    document = json.loads(api_server.call("GET", "/openapi.json", "").text)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert "post" in paths["/v1/messages"]
    assert "get" in paths["/v1/messages/{message_id}"]
    assert "get" in paths["/v1/stats"] and "get" in paths["/v1/health"]

    docs = api_server.call("GET", "/docs", "")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/v1/messages" in docs.text and "<script" not in docs.text.lower()


def test_health_is_503_naming_workers_without_one_and_200_with_one(
    settings: Settings, api_server: ApiServer, provider: ProviderThread, workers: WorkerPool
) -> None:
    down = api_server.call("GET", "/v1/health", "")
    assert down.status_code == 503, down.text
    assert [c["name"] for c in down.json()["checks"] if not c["ok"]] == ["workers"]

    workers.start(provider.url, settings=settings)

    def healthy() -> bool:
        return api_server.call("GET", "/v1/health", "").status_code == 200

    wait_until(healthy, timeout=30, message="a live worker makes the API healthy")
    assert all(c["ok"] for c in api_server.call("GET", "/v1/health", "").json()["checks"])


# -- exact stats --------------------------------------------------------------------------


def test_stats_report_a_state_built_through_the_api_exactly(
    settings: Settings,
    api_server: ApiServer,
    provider: ProviderThread,
    workers: WorkerPool,
    redis_client: redis.Redis,
) -> None:
    worker = workers.start(provider.url, settings=settings)
    _send_each(api_server, "B", 3)
    dead = _send_each(api_server, "D", 2, recipient="reject-1")  # answered 400: dead letters
    wait_until(lambda: len(delivered_ids(provider)) == 3, timeout=30, message="B delivered")
    wait_until(
        lambda: {_state(api_server, i) for i in dead} == {"dead_lettered"},
        timeout=30,
        message="D dead-lettered",
    )
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    _send_each(api_server, "A", 7)

    stats = api_server.call("GET", "/v1/stats").json()
    totals = ("waiting", "active", "retrying", "delayed", "completed", "failed")
    assert {t: stats[t] for t in totals} == {
        "waiting": 7, "active": 0, "retrying": 0, "delayed": 0, "completed": 3, "failed": 2,
    }  # fmt: skip
    assert stats["tenantConcurrency"] == {}
    rows = {(r["priority"], r["tenant"]): {c: r[c] for c in _COUNTED} for r in stats["rows"]}
    nothing = dict.fromkeys(_COUNTED, 0)
    assert rows == {
        ("normal", "A"): {**nothing, "waiting": 7},
        ("normal", "B"): {**nothing, "delivered": 3},
        ("normal", "D"): {**nothing, "dead_lettered": 2},
    }
    assert stats["priorities"] == {"normal": {**nothing, "waiting": 7, "delivered": 3,
                                              "dead_lettered": 2}}  # fmt: skip

    status = _cli_json(settings, "status")
    cli_rows = {(r["priority"], r["tenant"]): {c: r[c] for c in _COUNTED} for r in status["rows"]}
    assert cli_rows == rows
