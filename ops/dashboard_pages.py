"""What every dashboard page does around its own content: the signed-in key (or a redirect
to ``/login``), the page rendered with the session's CSRF token, a refusal shown as a page
with the API's status and reason, and the security headers every answer carries (a
Content-Security-Policy that allows our own script and style sheet only). A change is a
POST whose CSRF token is checked before anything happens."""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from litestar import Response
from litestar.datastructures import FormMultiDict
from litestar.exceptions import HTTPException

from relayq.ops.api_context import ApiRequest
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.dashboard_session import CsrfError, check_csrf, csrf_token, session_key, viewer_of
from relayq.ops.dashboard_templates import render
from relayq.streams.errors import RelayqError, ValidationError

__all__ = (
    "PAGE_SIZE",
    "REFRESH_SECONDS",
    "Change",
    "Page",
    "apply_change",
    "form_ms",
    "form_text",
    "html_page",
    "local_path",
    "see_other",
    "show_page",
)

_LIVE_HEADER = "x-dashboard-live"
REFRESH_SECONDS = 5
PAGE_SIZE = 50
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Cookie, X-Dashboard-Live",
}

Page = Callable[[ApiRequest, ApiPrincipal], Awaitable[dict[str, Any]]]
Change = Callable[[ApiRequest, ApiPrincipal, FormMultiDict], Awaitable[dict[str, Any]]]


def html_page(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        text, status_code=status, media_type="text/html; charset=utf-8",
        headers={**_SECURITY_HEADERS, **(headers or {})},
    )  # fmt: skip


def see_other(location: str, headers: dict[str, str] | None = None) -> Response[str]:
    return html_page("", 303, {"Location": location, **(headers or {})})


def to_login(request: ApiRequest) -> Response[str]:
    return see_other("/login?" + urlencode({"next": local_path(str(request.url.path))}))


def local_path(path: str) -> str:
    """``path`` if it is a path of this site, else ``/`` (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def failure_of(exc: Exception) -> tuple[int, str]:
    """The status and the sentence a refused request shows (what the API would answer)."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, CsrfError):
        return 403, str(exc)
    if isinstance(exc, ValidationError):
        return 422, str(exc)
    return 422 if isinstance(exc, ValueError) else 500, str(exc) or type(exc).__name__


def render_page(
    request: ApiRequest, viewer: ApiPrincipal, template: str, values: dict[str, Any], status: int
) -> Response[str]:
    key = session_key(request) or ""
    text = render(
        template,
        viewer=viewer,
        csrf=csrf_token(key),
        now_ms=time.time_ns() // 1_000_000,
        path=str(request.url.path),
        partial=request.headers.get(_LIVE_HEADER) == "1",
        **{"refresh": 0, **values},
    )
    return html_page(text, status)


async def show_page(request: ApiRequest, template: str, build: Page) -> Response[str]:
    """A page for the signed-in key: ``build``'s values in ``template``; a refusal (403,
    404, 422) shown as a page with the API's status and reason."""
    viewer = await viewer_of(request)
    if viewer is None:
        return to_login(request)
    try:
        values = await build(request, viewer)
    except (HTTPException, RelayqError, ValueError) as exc:
        status, reason = failure_of(exc)
        return render_page(
            request, viewer, "refused.html", {"status": status, "reason": reason}, status
        )
    return render_page(request, viewer, template, values, 200)


async def apply_change(request: ApiRequest, template: str, apply: Change) -> Response[str]:
    """A POST from a dashboard form: the session's key, its CSRF token, then ``apply``."""
    viewer = await viewer_of(request)
    if viewer is None:
        return to_login(request)
    form = await request.form()
    try:
        check_csrf(request, dict(form))
        values = await apply(request, viewer, form)
    except (HTTPException, RelayqError, ValueError, CsrfError) as exc:
        status, reason = failure_of(exc)
        return render_page(
            request, viewer, "refused.html", {"status": status, "reason": reason}, status
        )
    return render_page(request, viewer, template, values, 200)


def form_text(value: Any) -> str | None:
    """A form or query value, None when empty."""
    text = str(value).strip() if value is not None else ""
    return text or None


def form_ms(value: str | None, field: str) -> int | None:
    """A ``datetime-local`` value (UTC) or Unix ms, as Unix ms."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC)
    except ValueError:
        raise ValidationError(
            field, f"{value[:40]!r} is not a time (YYYY-MM-DDTHH:MM, UTC)"
        ) from None
    return int(moment.timestamp() * 1000)
