"""Who is looking at the dashboard, and proof that a form came from the dashboard.

Signing in posts an API key (``relayq keys create``) once; the server checks it and keeps
it in a cookie the page's scripts cannot read (``HttpOnly``), that no other site's page
sends (``SameSite=Strict``), for the dashboard's paths only. Every request checks the key
again (``ops.api_keys.verify``: one HGET), so a revoked key stops working at once. The key
is never logged, echoed or put in a page.

Every form that changes something carries a CSRF token: an HMAC of a fixed label under
the session's key. Only a page served to that session holds it (another site cannot read
our pages, nor the cookie); the POST handler recomputes it and compares in constant time.
With ``SameSite=Strict`` and the ``Origin`` check this is three locks on one door.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal, verify

__all__ = (
    "COOKIE",
    "CsrfError",
    "check_csrf",
    "csrf_token",
    "session_cookie_header",
    "session_key",
    "viewer_of",
)

COOKIE = "relayq_dashboard"
_CSRF_LABEL = b"relayq dashboard csrf v1"
_SESSION_SECONDS = 12 * 3600


class CsrfError(Exception):
    """A change posted without this session's token, or from another origin."""


def session_key(request: ApiRequest) -> str | None:
    return request.cookies.get(COOKIE) or None


async def viewer_of(request: ApiRequest) -> ApiPrincipal | None:
    """The principal of the session's key, or None (no cookie, or a key no longer valid)."""
    context = context_of(request)
    return await verify(context.client, context.keys, session_key(request))


def csrf_token(key: str) -> str:
    """The token the session of ``key`` puts in its forms."""
    return hmac.new(key.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def check_csrf(request: ApiRequest, form: dict[str, Any]) -> None:
    """CsrfError unless ``form`` holds the session's token and the request comes from
    this server's own pages (``Origin``, when the browser sends one, is our host)."""
    key = session_key(request)
    given = str(form.get("csrf", ""))
    if key is None or not hmac.compare_digest(given.encode(), csrf_token(key).encode()):
        raise CsrfError("this form's CSRF token is missing or wrong: reload the page")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        raise CsrfError(f"a change posted from another origin ({origin}) is refused")


def session_cookie_header(key: str | None) -> str:
    """The ``Set-Cookie`` value that starts a session with ``key`` (None: ends it)."""
    value, age = (key, _SESSION_SECONDS) if key else ("", 0)
    return f"{COOKIE}={value}; Max-Age={age}; Path=/; HttpOnly; SameSite=Strict"
