"""The overview's per-tenant table and the sortable ``/tenants`` page (issue 16: the
dashboard stays usable with many tenants). The overview shows only the busiest rows (most
unfinished, then most dead-lettered, then most delivered) with a link to ``/tenants``,
which pages through every row sorted by any column; a tenant key sees its own rows only."""

from __future__ import annotations

import html
import re

import httpx
import redis

from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeState, counter_field
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.dashboard_support import signed_in

_TENANTS = 60
"""More than a page of ``/tenants`` (50 rows)."""
_ROW = re.compile(r'<tr data-tenant="([^"]+)"><td>([^<]+)</td>.*?</tr>')


def _tenant(n: int) -> str:
    return f"t{n:02d}"


def _seed(settings: Settings, keys: Keys, client: redis.Redis) -> None:
    """Tenant ``tNN`` has NN delivered (counted as the finishing scripts count them, in the
    partition of its conversation) and, for NN < 5, NN + 1 waiting messages (sent)."""
    for n in range(_TENANTS):
        partition = keys.partition_of(_tenant(n), "c")
        field = counter_field(OutcomeState.DELIVERED, "normal", _tenant(n))
        client.hincrby(keys.counts(partition), field, n)
    with SyncProducer(settings) as producer:
        for n in range(5):
            for _ in range(n + 1):
                producer.send(tenant=_tenant(n), conversation="c", recipient="+1555", payload={})


def _rows(page: httpx.Response, table: str) -> list[str]:
    assert page.status_code == 200, page.text[:500]
    body = page.text.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return [tenant for tenant, _priority in _ROW.findall(body)]


def test_the_overview_shows_the_busiest_tenants_and_links_to_all(
    settings: Settings, keys: Keys, redis_client: redis.Redis, api_server: ApiServer
) -> None:
    _seed(settings, keys, redis_client)
    with signed_in(api_server, api_server.admin_key) as session:
        page = session.get("/")
    shown = _rows(page, "per-tenant")
    # Waiting first (t04 has 5 ... t00 has 1), then by delivered: t29, t28, ...
    assert shown == [_tenant(n) for n in (4, 3, 2, 1, 0)] + [_tenant(n) for n in range(59, 44, -1)]
    assert 'href="/tenants"' in page.text and f"of {_TENANTS} rows" in page.text


def test_tenants_pages_through_every_row_sorted_by_any_column(
    settings: Settings, keys: Keys, redis_client: redis.Redis, api_server: ApiServer
) -> None:
    _seed(settings, keys, redis_client)
    with signed_in(api_server, api_server.admin_key) as session:
        first = session.get("/tenants", params={"sort": "delivered", "order": "asc"})
        second = session.get("/tenants", params={"sort": "delivered", "order": "asc", "page": 2})
        by_name = session.get("/tenants", params={"sort": "tenant", "order": "desc"})
        waiting = session.get("/tenants", params={"sort": "waiting"})
        bad = session.get("/tenants", params={"sort": "payload"})
        backwards = session.get("/tenants", params={"order": "sideways"})
    assert _rows(first, "tenants") + _rows(second, "tenants") == [
        _tenant(n) for n in range(_TENANTS)
    ]
    assert len(_rows(first, "tenants")) == 50 and 'rel="next"' in first.text
    assert 'rel="next"' not in second.text
    assert _rows(by_name, "tenants")[:3] == ["t59", "t58", "t57"]
    assert _rows(waiting, "tenants")[:5] == ["t04", "t03", "t02", "t01", "t00"]
    assert bad.status_code == 422 and "cannot sort by 'payload'" in html.unescape(bad.text)
    assert backwards.status_code == 422 and "must be asc or desc" in backwards.text


def test_a_tenant_key_sees_only_its_own_rows(
    settings: Settings, keys: Keys, redis_client: redis.Redis, api_server: ApiServer
) -> None:
    _seed(settings, keys, redis_client)
    with signed_in(api_server, api_server.create_key("--tenant", "t07")) as session:
        overview = session.get("/")
        every = session.get("/tenants", params={"sort": "tenant"})
    assert _rows(overview, "per-tenant") == ["t07"]
    assert _rows(every, "tenants") == ["t07"]
    assert "t08" not in every.text and "t06" not in every.text
