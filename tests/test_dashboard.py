"""The dashboard in a real browser (issue 16, item 2): Debian's chromium driven by
Playwright against a real ``relayq api`` and Redis. The page loads with an admin key and
shows the API's numbers for a known state, and refreshes them itself; a dead letter replayed
from the page is delivered and leaves the DLQ; a tenant key sees no other tenant's message
anywhere; a ``<script>`` payload shows as text and never runs; pause works from the page.

Each page's screenshot goes to ``tests/artifacts/dashboard/`` (CI keeps the folder), with
the page load times measured in the browser (``timings.txt``). Skipped, saying so, where
``/usr/bin/chromium`` is missing (CI installs it with apt; Playwright's own browser
download cannot work on these machines)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.conftest import ProviderFactory
from tests.dashboard_support import KnownState, make_known_state
from tests.support import WorkerPool

CHROMIUM = os.environ.get("RELAYQ_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "dashboard"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)",
)

_PAGES = (
    "/",
    "/tenants",
    "/messages?state=waiting",
    "/messages?state=delivered",
    "/messages?state=dead_lettered",
    "/dead-letters",
    "/pending",
    "/controls",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    try:
        yield opened
    finally:
        context.close()


def _sign_in(page: Any, api_server: ApiServer, key: str) -> None:
    page.goto(f"{api_server.url}/")
    assert "/login" in page.url  # no session yet
    page.fill('input[name="key"]', key)
    page.click("form button")
    page.wait_for_url(f"{api_server.url}/")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _bolt_ref(api_server: ApiServer, state: KnownState, index: int = 0) -> str:
    ref: str = api_server.call("GET", f"/v1/dlq/{state.dead['bolt'][index]}").json()["id"]
    return ref


def test_the_overview_shows_the_apis_numbers_and_refreshes_itself(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
    page: Any,
) -> None:
    make_known_state(settings, make_provider, workers)
    _sign_in(page, api_server, api_server.admin_key)
    stats = api_server.call("GET", "/v1/stats").json()
    names = {"waiting": "waiting", "in_flight": "active", "retrying": "retrying",
             "delayed": "delayed", "delivered": "completed", "dead_lettered": "failed"}  # fmt: skip
    shown = {name: int(page.inner_text(f'[data-count="{name}"]')) for name in names}
    assert shown == {name: stats[field] for name, field in names.items()}
    assert (shown["waiting"], shown["delivered"], shown["dead_lettered"]) == (4, 5, 4)
    for level, counts in stats["priorities"].items():
        cells = page.locator(f'#per-priority tr[data-priority="{level}"] td').all_inner_texts()
        assert [int(c) for c in cells[1:7]] == [
            counts[n] for n in ("waiting", "in_flight", "retrying", "delayed", "delivered",
                                "dead_lettered")
        ]  # fmt: skip
    tenants = page.locator("#per-tenant tr[data-tenant]").evaluate_all(
        "rows => rows.map(r => r.dataset.tenant)"
    )
    assert sorted(set(tenants)) == ["acme", "bolt"]
    assert page.locator("svg.chart").count() == 2
    _shot(page, "overview")

    # The live part refreshes itself (our script runs under the page's CSP) and still
    # shows the API's numbers.
    page.locator("#live[data-refreshed]").wait_for(state="attached", timeout=15_000)
    assert int(page.inner_text('[data-count="waiting"]')) == 4


def test_a_dead_letter_replayed_from_the_page_is_delivered_and_leaves_the_dlq(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
    page: Any,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    chosen, ref = state.dead["bolt"][0], _bolt_ref(api_server, state)
    _sign_in(page, api_server, api_server.admin_key)
    page.goto(f"{api_server.url}/dead-letters?tenant=bolt")
    assert page.locator("#dead-letters tr[data-message]").count() == 3
    _shot(page, "dead-letters")
    page.check(f'input[name="ids"][value="{ref}"]')
    page.click('button[value="replay"]')
    page.wait_for_selector("#confirm")
    _shot(page, "dead-letters-confirm")
    page.click("#confirm")
    assert page.inner_text("#outcome").strip() == "Replayed 1; already gone 0; refused 0."
    _shot(page, "dead-letters-replayed")

    provider = make_provider()
    assert workers.start(provider.url, burst=True).wait(timeout=60) == 0
    delivered = [d.message_id for d in provider.deliveries()]
    assert sorted(delivered) == sorted([chosen, *state.waiting])  # acme's waiting went too
    left = api_server.call("GET", "/v1/dlq", params={"tenant": "bolt"}).json()["items"]
    assert chosen not in [item["message_id"] for item in left] and len(left) == 2
    assert api_server.call("GET", f"/v1/messages/{chosen}").json()["state"] == "delivered"


def test_a_tenant_key_sees_no_other_tenants_message_anywhere_on_the_page(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
    page: Any,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    _sign_in(page, api_server, api_server.create_key("--tenant", "acme"))
    for path in (*_PAGES, "/messages?state=in_flight", "/messages?state=delayed"):
        page.goto(f"{api_server.url}{path}")
        text = page.content()
        assert "bolt" not in text, path
        assert all(message_id not in text for message_id in state.dead["bolt"]), path
    page.goto(f"{api_server.url}/messages?state=waiting")
    assert state.waiting[0] in page.content()
    _shot(page, "messages-tenant-key")
    page.fill('header input[name="q"]', state.dead["bolt"][0])
    page.click("header form.search button")
    assert page.inner_text("h1") == "404"  # another tenant's message does not exist for it
    assert "bolt" not in page.content().replace(state.dead["bolt"][0], "")


def test_a_script_payload_shows_as_text_and_never_runs(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
    page: Any,
) -> None:
    state = make_known_state(settings, make_provider, workers)
    _sign_in(page, api_server, api_server.admin_key)
    for path, name in (
        (f"/messages/{state.dead['bolt'][0]}", "message-detail"),
        (f"/dead-letters/{_bolt_ref(api_server, state)}", "dead-letter-detail"),
        ("/dead-letters", "dead-letters-with-markup"),
    ):
        page.goto(f"{api_server.url}{path}")
        page.wait_for_timeout(300)  # an onerror handler would have fired by now
        assert page.evaluate("window.__pwned") is None, path
        if page.locator("#payload").count():
            assert "<script>window.__pwned = 1</script>" in page.inner_text("#payload")
        _shot(page, name)


def test_pause_from_the_page_and_every_page_loads_quickly(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    api_server: ApiServer,
    page: Any,
) -> None:
    make_known_state(settings, make_provider, workers)
    _sign_in(page, api_server, api_server.admin_key)
    page.goto(f"{api_server.url}/controls")
    page.click('#pause-form button[value="pause"]')
    assert page.inner_text("#outcome").strip() == "Paused all."
    assert api_server.call("GET", "/v1/paused").json() == ["all"]
    page.goto(f"{api_server.url}/controls")
    _shot(page, "controls-paused")
    page.click('#pause-form button[value="resume"]')
    assert api_server.call("GET", "/v1/paused").json() == []

    timings: dict[str, list[float]] = {}
    for path in _PAGES:
        for _ in range(5):
            started = time.perf_counter()
            page.goto(f"{api_server.url}{path}", wait_until="load")
            timings.setdefault(path, []).append(1000 * (time.perf_counter() - started))
        _shot(page, "page" + path.replace("/", "-").replace("?", "-").replace("=", "-"))
    lines = [
        f"{path}\tmedian {statistics.median(ms):.0f} ms\tmax {max(ms):.0f} ms"
        for path, ms in timings.items()
    ]
    (ARTIFACTS / "timings.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    assert max(max(ms) for ms in timings.values()) < 2000  # a smoke bound, not the bench
