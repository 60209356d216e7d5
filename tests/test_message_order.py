"""Messages kept by time listed newest or oldest first (issue 16: "messages by state,
paginated and sortable"): the library, ``GET /v1/messages?order=``, ``relayq message list
--order`` and the dashboard's order link agree, and every page of either order holds each
message once."""

from __future__ import annotations

import html
import json
import re

import pytest

from relayq.producers import SyncProducer
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.conftest import ProviderFactory
from tests.dashboard_support import signed_in
from tests.support import WorkerPool, run_cli

_ROW = re.compile(r'<tr><td><a href="/messages/([0-9A-Z]+)">')


@pytest.fixture
def delivered(settings: Settings, make_provider: ProviderFactory, workers: WorkerPool) -> list[str]:
    """Seven messages of one conversation, delivered in send order: their ids, oldest first."""
    with SyncProducer(settings) as producer:
        ids = [
            producer.send(tenant="acme", conversation="c1", recipient="+1555", payload={"n": n})
            for n in range(7)
        ]
    provider = make_provider()
    assert workers.start(provider.url, burst=True, settings=settings).wait(timeout=60) == 0
    assert [d.message_id for d in provider.deliveries()] == ids
    return ids


def _api_pages(api_server: ApiServer, order: str) -> list[str]:
    found: list[str] = []
    after: str | None = None
    while True:
        query = f"/v1/messages?state=delivered&order={order}&limit=3"
        page = api_server.call("GET", query + (f"&after={after}" if after else "")).json()
        found += [item["message_id"] for item in page["items"]]
        after = page["next"]
        if after is None:
            return found


def test_api_pages_in_either_order(api_server: ApiServer, delivered: list[str]) -> None:
    assert _api_pages(api_server, "oldest") == delivered
    assert _api_pages(api_server, "newest") == delivered[::-1]
    bad = api_server.call("GET", "/v1/messages?state=delivered&order=sideways")
    assert bad.status_code == 422 and "order" in bad.text


def test_cli_and_dashboard_list_oldest_first(
    settings: Settings, api_server: ApiServer, delivered: list[str]
) -> None:
    done = run_cli(settings, "message", "list", "--state", "delivered", "--order", "oldest",
                   "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [item["message_id"] for item in json.loads(done.stdout)["items"]] == delivered
    with signed_in(api_server, api_server.admin_key) as session:
        newest = session.get("/messages", params={"state": "delivered"})
        link = re.search(r'<a id="order" href="([^"]+)">oldest first</a>', newest.text)
        assert link is not None
        oldest = session.get(html.unescape(link[1]))
    assert _ROW.findall(newest.text) == delivered[::-1]
    assert _ROW.findall(oldest.text) == delivered and "Oldest first" in oldest.text
