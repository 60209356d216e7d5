"""The dashboard at ``/``: server-rendered pages over the HTTP API's own handlers.

Pages: overview (``/``) and every tenant's counts (``/tenants``), messages by state or by
conversation/recipient and one message (``/messages``), dead letters with replay and
delete (``/dead-letters``), pending entries with release (``/pending``) and controls
(``/controls``, ``ops.dashboard_controls``); what every page does around its content is
``ops.dashboard_pages``. Every page reads without JavaScript; a 20-line script
refreshes the page's live part every few seconds (``static/live.js``).

Signing in (``/login``) keeps the API key in an HttpOnly, SameSite=Strict cookie
(``ops.dashboard.session``); each page then calls the ``/v1`` handler a request with that
key would reach, so a tenant key sees its tenant only, a read-only key changes nothing,
and the numbers are the API's. Every change is a POST carrying the session's CSRF token;
replays, deletes and releases go through a confirmation page first, and the page after
shows what the action did. Pages are sent with a Content-Security-Policy that allows our
own script and style sheet only.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Response, Router, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import Parameter
from litestar.static_files import create_static_files_router

from relayq.ops import api_controls, api_messages, api_repairs, api_stats
from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal, verify
from relayq.ops.attempt_rows import attempt_rows
from relayq.ops.dashboard_controls import CONTROL_PAGES
from relayq.ops.dashboard_pages import (
    PAGE_SIZE,
    REFRESH_SECONDS,
    apply_change,
    form_ms,
    form_text,
    html_page,
    local_path,
    see_other,
    show_page,
)
from relayq.ops.dashboard_session import CsrfError, check_csrf, session_cookie_header
from relayq.ops.dashboard_templates import STATIC_DIR, render
from relayq.ops.dashboard_views import (
    TENANT_COLUMNS,
    busiest_rows,
    charts,
    levels_of,
    message_body,
    sorted_rows,
    trace_id,
    worker_rows,
)
from relayq.ops.dead_letter_repair import DeleteReport
from relayq.ops.message_listing import LISTABLE_STATES, ORDERS
from relayq.streams.errors import ValidationError

__all__ = ("DASHBOARD_ROUTES",)

_OVERVIEW_TENANT_ROWS = 20
"""Per-tenant rows on the overview (the busiest); ``/tenants`` pages through all of them."""


# -- signing in -----------------------------------------------------------------------------


@get("/login")
async def login_page(next: str = "/") -> Response[str]:
    return html_page(render("login.html", next=local_path(next), error=None))


@post("/login")
async def login(request: ApiRequest) -> Response[str]:
    """Check the posted key; on success keep it in the session cookie and go on."""
    form = await request.form()
    key = str(form.get("key", "")).strip()
    target = local_path(str(form.get("next", "/")))
    context = context_of(request)
    if await verify(context.client, context.keys, key) is None:
        page = render("login.html", next=target, error="That is not a valid API key.")
        return html_page(page, 401)
    return see_other(target, {"Set-Cookie": session_cookie_header(key)})


@post("/logout")
async def logout(request: ApiRequest) -> Response[str]:
    form = await request.form()
    try:
        check_csrf(request, dict(form))
    except CsrfError as exc:
        return html_page(render("login.html", next="/", error=str(exc)), 403)
    return see_other("/login", {"Set-Cookie": session_cookie_header(None)})


# -- overview -------------------------------------------------------------------------------


async def _overview(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
    context = context_of(request)
    stats = await api_stats.stats.fn(request=request, principal=viewer, tenant=None)
    paused = await api_controls.paused.fn(request=request, principal=viewer)
    workers = await worker_rows(context) if viewer.role != "tenant" else None
    return {
        "stats": stats,
        "levels": levels_of(stats),
        "tenant_rows": busiest_rows(stats, _OVERVIEW_TENANT_ROWS),
        "paused": paused,
        "workers": workers,
        "charts": await charts(context, viewer, stats),
        "refresh": REFRESH_SECONDS,
    }


@get("/")
async def overview(request: ApiRequest) -> Response[str]:
    return await show_page(request, "overview.html", _overview)


@get("/tenants")
async def tenants(
    request: ApiRequest, sort: str = "waiting", order: str = "desc", page: int = 1
) -> Response[str]:
    """Every per-tenant row (a priority level of a tenant), sorted by a column, a page at
    a time."""

    async def build(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
        if order not in ("asc", "desc"):
            raise ValidationError("order", "must be asc or desc")
        if page < 1:
            raise ValidationError("page", "must be 1 or more")
        stats = await api_stats.stats.fn(request=request, principal=viewer, tenant=None)
        rows = sorted_rows(stats, sort, descending=order == "desc")
        start = (page - 1) * PAGE_SIZE
        query = {"sort": sort, "order": order}
        return {
            "rows": rows[start : start + PAGE_SIZE],
            "total": len(rows),
            "first": start + 1,
            "sort": sort,
            "order": order,
            "columns": TENANT_COLUMNS,
            "next_url": f"/tenants?{urlencode({**query, 'page': page + 1})}"
            if start + PAGE_SIZE < len(rows)
            else None,
            "previous_url": f"/tenants?{urlencode({**query, 'page': page - 1})}"
            if page > 1
            else None,
            "refresh": REFRESH_SECONDS if page == 1 else 0,
        }

    return await show_page(request, "tenants.html", build)


# -- messages -------------------------------------------------------------------------------


@get("/messages")
async def messages(
    request: ApiRequest,
    listed: Annotated[str, Parameter(query="state")] = "waiting",
    tenant: str | None = None,
    after: str | None = None,
    q: str | None = None,
    conversation: str | None = None,
    recipient: str | None = None,
    order: str | None = None,
) -> Response[str]:
    """Messages by state, a page at a time (``order``: newest or oldest first, for the
    states kept by time); ``q`` (a message id) opens that message; ``conversation`` /
    ``recipient`` find the finished messages of one (state ignored)."""
    if form_text(q):
        return see_other(f"/messages/{form_text(q)}")
    search = {"conversation": form_text(conversation), "recipient": form_text(recipient)}

    async def build(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
        searching = any(search.values())
        page = await api_messages.list_by_state.fn(
            request=request, principal=viewer, message_state=None if searching else listed,
            tenant=form_text(tenant), limit=PAGE_SIZE, after=form_text(after), **search,
            order=None if searching else form_text(order),
        )  # fmt: skip
        query = {"state": listed, "tenant": form_text(tenant) or ""}
        query.update((name, text) for name, text in search.items() if text)
        if form_text(order) and not searching:
            query["order"] = form_text(order) or ""
        return {
            "state": listed,
            "states": LISTABLE_STATES,
            "searching": searching,
            **{name: text or "" for name, text in search.items()},
            "tenant": form_text(tenant) or "",
            "page": page,
            "next_url": f"/messages?{urlencode({**query, 'after': page.next})}"
            if page.next
            else None,
            "first_url": f"/messages?{urlencode(query)}" if after else None,
            "order_urls": {
                name: f"/messages?{urlencode({**query, 'order': name})}" for name in ORDERS
            },
            "order": form_text(order),
            "refresh": 0 if after else REFRESH_SECONDS,
        }

    return await show_page(request, "messages.html", build)


@get("/messages/{message_id:str}")
async def message_detail(request: ApiRequest, message_id: str) -> Response[str]:

    async def build(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
        status = await api_messages.show_message.fn(
            request=request, message_id=message_id, principal=viewer
        )
        body = await message_body(context_of(request), status)
        return {
            "status": status,
            "message": body,
            "trace_id": trace_id(body),
            "attempts": attempt_rows(status.record),
            "refresh": 0,
        }

    return await show_page(request, "message.html", build)


# -- dead letters ---------------------------------------------------------------------------

_DLQ_FILTERS = ("tenant", "conversation", "kind", "since", "until")


def _dlq_filter(source: Any) -> dict[str, str]:
    """The dead-letter filter fields given in a query or form, as text."""
    return {name: text for name in _DLQ_FILTERS if (text := form_text(source.get(name)))}


@get("/dead-letters")
async def dead_letters(request: ApiRequest) -> Response[str]:
    async def build(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
        chosen = _dlq_filter(request.query_params)
        after = form_text(request.query_params.get("after"))
        page = await api_repairs.list_dead_letters.fn(
            request=request, principal=viewer, tenant=chosen.get("tenant"),
            conversation=chosen.get("conversation"), kind=chosen.get("kind"),
            since_ms=form_ms(chosen.get("since"), "since"),
            until_ms=form_ms(chosen.get("until"), "until"), limit=PAGE_SIZE, after=after,
        )  # fmt: skip
        next_url = (
            f"/dead-letters?{urlencode({**chosen, 'after': page.next})}" if page.next else None
        )
        return {"filter": chosen, "page": page, "next_url": next_url, "refresh": 0}

    return await show_page(request, "dead_letters.html", build)


@get("/dead-letters/{ref:str}")
async def dead_letter_detail(request: ApiRequest, ref: str) -> Response[str]:
    async def build(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
        letter = await api_repairs.show_dead_letter.fn(request=request, ref=ref, principal=viewer)
        return {"letter": letter, "refresh": 0}

    return await show_page(request, "dead_letter.html", build)


def _replay_in(form: FormMultiDict, ids: list[str]) -> api_repairs.ReplayIn:
    chosen = _dlq_filter(form)
    if ids:
        return api_repairs.ReplayIn(ids=ids)
    return api_repairs.ReplayIn(
        tenant=chosen.get("tenant"), conversation=chosen.get("conversation"),
        kind=chosen.get("kind"), since_ms=form_ms(chosen.get("since"), "since"),
        until_ms=form_ms(chosen.get("until"), "until"), all=not chosen,
    )  # fmt: skip


async def _delete(
    request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict, ids: list[str]
) -> DeleteReport:
    if ids:
        report = DeleteReport()
        for ref in ids:
            one = await api_repairs.delete_dead_letter.fn(
                request=request, ref=ref, principal=viewer
            )
            report.deleted += one.deleted
            report.gone += one.gone
        return report
    chosen = api_repairs.chosen_dead_letters(viewer, _replay_in(form, ids))
    context = context_of(request)
    now_ms = time.time_ns() // 1_000_000
    until = min(chosen.until_ms or now_ms, now_ms + 1)
    repair = api_repairs.dead_letter_repair(context, viewer)
    deleted = await repair.purge(msgspec.structs.replace(chosen, until_ms=until))
    return DeleteReport(deleted=deleted)


async def _dead_letter_action(
    request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict
) -> dict[str, Any]:
    action = str(form.get("action", ""))
    if action not in ("replay", "delete"):
        raise ValidationError("action", "must be replay or delete")
    ids = [ref for ref in form.getall("ids", []) if form_text(ref)]
    chosen = _dlq_filter(form)
    if form.get("confirm") != "yes":
        return {"confirm": True, "action": action, "ids": ids, "filter": chosen, "done": None}
    if action == "replay":
        done: Any = await api_repairs.replay_dead_letters.fn(
            request=request, data=_replay_in(form, ids), principal=viewer
        )
    else:
        done = await _delete(request, viewer, form, ids)
    return {"confirm": False, "action": action, "ids": ids, "filter": chosen, "done": done}


@post("/dead-letters/action")
async def dead_letters_action(request: ApiRequest) -> Response[str]:
    """Replay or delete the dead letters ticked (``ids``) or every one the filter takes:
    first a confirmation page, then (``confirm=yes``) the action and what it did."""
    return await apply_change(request, "dead_letter_action.html", _dead_letter_action)


# -- pending entries --------------------------------------------------------------------------


@get("/pending")
async def pending(request: ApiRequest, consumer: str | None = None) -> Response[str]:
    async def build(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
        report = await api_repairs.list_pending.fn(
            request=request, principal=viewer, partition=None, consumer=form_text(consumer),
            tenant=None, min_idle_ms=0, min_deliveries=0, limit=PAGE_SIZE,
        )  # fmt: skip
        entries = sorted(report.entries, key=lambda entry: -entry.idle_ms)
        return {"report": report, "entries": entries, "consumer": form_text(consumer) or "",
                "refresh": REFRESH_SECONDS}  # fmt: skip

    return await show_page(request, "pending.html", build)


async def _release(
    request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict
) -> dict[str, Any]:
    partition = form_text(form.get("partition"))
    data = api_repairs.ReleaseIn(
        partition=int(partition) if partition is not None else None,
        consumer=form_text(form.get("consumer")),
        tenant=viewer.tenant if viewer.role == "tenant" else None,
        min_idle_ms=int(form_text(form.get("min_idle_ms")) or 0),
    )
    if form.get("confirm") != "yes":
        return {"confirm": True, "data": data, "done": None}
    done = await api_repairs.release.fn(request=request, data=data, principal=viewer)
    return {"confirm": False, "data": data, "done": done}


@post("/pending/release")
async def pending_release(request: ApiRequest) -> Response[str]:
    return await apply_change(request, "release.html", _release)


# -- the OpenAPI document's address ----------------------------------------------------------


@get("/openapi.json", media_type="application/json")
async def openapi_document(request: ApiRequest) -> dict[str, Any]:
    """``/openapi.json`` where it was before the dashboard took ``/`` (the OpenAPI router
    now lives under ``/docs``)."""
    document: dict[str, Any] = request.app.openapi_schema.to_schema()
    return document


DASHBOARD_ROUTES = [
    Router(
        path="/",
        include_in_schema=False,
        route_handlers=[
            login_page, login, logout, overview, tenants, messages, message_detail, dead_letters,
            dead_letter_detail, dead_letters_action, pending, pending_release, *CONTROL_PAGES,
            openapi_document,
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
    )
]  # fmt: skip
"""One router: the pages, their static files, and ``/openapi.json``."""
