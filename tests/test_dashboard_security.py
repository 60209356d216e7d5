"""The dashboard's security over HTTP against a real ``relayq api`` (issue 16, item 1):
pages need a signed-in key; a tenant key sees its tenant only, on every page; a read-only
key cannot repair; a change without this session's CSRF token (or from another origin) is
refused and changes nothing; payloads are shown escaped, under a strict CSP."""

from __future__ import annotations

import html

import redis

from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.conftest import ProviderFactory
from tests.dashboard_support import (
    HOSTILE,
    KnownState,
    csrf_of,
    dlq_length,
    make_known_state,
    signed_in,
)
from tests.support import WorkerPool

_PAGES = (
    "/",
    "/tenants",
    "/messages?state=waiting",
    "/messages?state=delivered",
    "/messages?state=dead_lettered",
    "/messages?state=delayed",
    "/messages?state=in_flight",
    "/dead-letters",
    "/pending",
    "/controls",
)


def _bolt_ref(api_server: ApiServer, state: KnownState) -> str:
    found = api_server.call("GET", f"/v1/dlq/{state.dead['bolt'][0]}")
    assert found.status_code == 200, found.text
    ref: str = found.json()["id"]
    return ref


def test_pages_need_a_valid_key_and_the_session_cookie_is_http_only(
    api_server: ApiServer,
) -> None:
    with api_server.client() as anonymous:
        first = anonymous.get("/")
        assert first.status_code == 303 and first.headers["location"] == "/login?next=%2F"
        assert anonymous.get("/login").status_code == 200
        wrong = "rq_000000000000_not-a-key"
        refused = anonymous.post("/login", data={"key": wrong, "next": "/"})
        assert refused.status_code == 401 and wrong not in refused.text
        done = anonymous.post(
            "/login", data={"key": api_server.admin_key, "next": "https://evil.example/"}
        )
    assert done.status_code == 303 and done.headers["location"] == "/"  # no open redirect
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert api_server.admin_key not in api_server.log()
    with signed_in(api_server, api_server.admin_key) as session:
        page = session.get("/")
    assert page.status_code == 200 and "Overview" in page.text
    assert api_server.admin_key not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_tenant_key_sees_only_its_tenant_on_every_page(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    bolt_ref = _bolt_ref(api_server, state)
    with signed_in(api_server, api_server.create_key("--tenant", "acme")) as acme:
        shown = {path: acme.get(path) for path in _PAGES}
        for path, page in shown.items():
            assert page.status_code == 200, (path, page.text[:500])
            assert "bolt" not in page.text, path
        assert state.waiting[0] in shown["/messages?state=waiting"].text
        assert state.delivered[0] in shown["/messages?state=delivered"].text
        assert state.dead["acme"][0] in shown["/dead-letters"].text
        for path in (f"/messages/{state.dead['bolt'][0]}", f"/dead-letters/{bolt_ref}"):
            assert acme.get(path).status_code == 404, path
        asked = acme.get("/messages?state=dead_lettered&tenant=bolt")
        assert asked.status_code == 403 and "bolt-conv" not in asked.text
        assert acme.get("/dead-letters?tenant=bolt").status_code == 403


def test_a_read_only_key_cannot_repair(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    ref = _bolt_ref(api_server, state)
    with signed_in(api_server, api_server.create_key("--read-only")) as reader:
        assert "Replay" not in reader.get("/dead-letters").text  # no buttons to press
        token = csrf_of(reader, "/")
        for form in (
            {"action": "replay", "ids": ref, "confirm": "yes"},
            {"action": "delete", "ids": ref, "confirm": "yes"},
            {"action": "replay", "confirm": "yes"},
        ):
            refused = reader.post("/dead-letters/action", data={**form, "csrf": token})
            assert refused.status_code == 403, refused.text
        pause = reader.post("/controls", data={"action": "pause", "csrf": token})
        assert pause.status_code == 403
    assert dlq_length(redis_client, keys) == 4
    assert api_server.call("GET", "/v1/paused").json() == []


def test_a_change_without_the_session_csrf_token_is_refused_and_changes_nothing(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    ref = _bolt_ref(api_server, state)
    form = {"action": "replay", "ids": ref, "confirm": "yes"}
    with signed_in(api_server, api_server.admin_key) as admin:
        token = csrf_of(admin)
        with signed_in(api_server, api_server.create_key("--admin")) as another:
            other = csrf_of(another)
        assert other != token
        for forged in ({}, {"csrf": ""}, {"csrf": other}, {"csrf": token[:-1] + "0"}):
            refused = admin.post("/dead-letters/action", data={**form, **forged})
            assert refused.status_code == 403 and "CSRF" in refused.text
        cross = admin.post(
            "/dead-letters/action", data={**form, "csrf": token},
            headers={"Origin": "https://evil.example"},
        )  # fmt: skip
        assert cross.status_code == 403
        assert admin.post("/controls", data={"action": "pause"}).status_code == 403
        assert dlq_length(redis_client, keys) == 4
        assert api_server.call("GET", "/v1/paused").json() == []

        asked = admin.post("/dead-letters/action", data={**form, "csrf": token, "confirm": ""})
        assert asked.status_code == 200 and 'id="confirm"' in asked.text
        assert dlq_length(redis_client, keys) == 4  # a confirmation changes nothing
        done = admin.post("/dead-letters/action", data={**form, "csrf": token})
        assert done.status_code == 200 and "Replayed 1" in done.text
    assert dlq_length(redis_client, keys) == 3


def test_payloads_are_shown_escaped(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    ref = _bolt_ref(api_server, state)
    with signed_in(api_server, api_server.admin_key) as admin:
        for path in (f"/messages/{state.dead['bolt'][0]}", f"/dead-letters/{ref}"):
            page = admin.get(path)
            assert page.status_code == 200, page.text
            assert "<script>window" not in page.text and "<img" not in page.text
            assert html.escape("<script>window.__pwned = 1</script>", quote=False) in page.text
            assert "bolt-rcpt" in page.text
    assert HOSTILE.startswith("<script>")


def test_delete_every_dead_letter_a_filter_takes_after_confirming(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    make_known_state(settings, make_provider, workers)
    with signed_in(api_server, api_server.admin_key) as admin:
        form = {"action": "delete", "tenant": "bolt", "csrf": csrf_of(admin)}
        asked = admin.post("/dead-letters/action", data=form)
        assert asked.status_code == 200 and "tenant=bolt" in asked.text
        assert dlq_length(redis_client, keys) == 4
        done = admin.post("/dead-letters/action", data={**form, "confirm": "yes"})
        assert done.status_code == 200 and "Deleted 3;" in done.text, done.text
    left = api_server.call("GET", "/v1/dlq").json()["items"]
    assert [item["tenant"] for item in left] == ["acme"]
