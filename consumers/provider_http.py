"""The HTTP client every provider adapter shares: one aiohttp session per worker, requests
under the send fence, transport failures as retryable delivery errors, a client span.

An adapter builds its request (URL, body, headers) and classifies the provider's
:class:`Reply`; this module does the rest. The session is opened on first use inside the
running loop (keep-alive, up to ``max_connections``), with the proxy from
``HTTP(S)_PROXY``/``NO_PROXY`` and httpx's TLS trust store (certifi, or
``SSL_CERT_FILE``/``SSL_CERT_DIR``). Credentials travel only in headers given per request
or per session; nothing here logs a header or puts one in an error or a span.
"""

from __future__ import annotations

import email.utils
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping

import aiohttp
import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from relayq.consumers.fenced_http import Reply, post
from relayq.streams.errors import RetryableDeliveryError
from relayq.streams.telemetry import inject_context, tracer, tracing_enabled

__all__ = ("ProviderHttp", "Reply", "parse_retry_after")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (as httpx's ``trust_env`` did)."""
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(urllib.parse.urlsplit(url).hostname or ""):
        return None
    return proxies.get(url.split(":", 1)[0]) or proxies.get("all")


class ProviderHttp:
    """POSTs under the send fence over one session. ``timeout``: seconds to connect
    (including the wait for a free connection) and between reads of the answer.
    ``session``: one to share (its owner closes it; this then opens and closes none)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._max_connections = max_connections
        self._headers = dict(headers) if headers else None
        self._session = session
        self._owns_session = session is None
        self._proxies: dict[str, str | None] = {}

    def session(self) -> aiohttp.ClientSession:
        """The session, opened on first use (inside the running loop, which it belongs to)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=httpx.create_ssl_context()
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session this opened, if any (idempotent)."""
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        content_type: str = "application/json",
    ) -> Reply:
        """The provider's answer to one POST (any status). Raises SendFencedError when the
        fence stopped it, RetryableDeliveryError (kind ``timeout`` or ``connection``) when
        the transport failed; the errors never hold a header."""
        if not tracing_enabled():
            return await self._post(url, body, headers, content_type)
        with tracer().start_as_current_span("POST", kind=SpanKind.CLIENT) as span:
            span.set_attributes({"http.request.method": "POST", "url.full": _shown(url)})
            headers.update(inject_context())
            try:
                reply = await self._post(url, body, headers, content_type)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            span.set_attribute("http.response.status_code", reply.status)
            if reply.status >= 400:  # OpenTelemetry's HTTP conventions: a client error
                span.set_status(Status(StatusCode.ERROR, f"HTTP {reply.status}"))
            return reply

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], content_type: str
    ) -> Reply:
        proxy = self._proxies.get(url, "")
        if proxy == "":
            proxy = self._proxies[url] = _env_proxy(url)
        try:
            return await post(
                self.session(), url, body, headers, content_type=content_type, proxy=proxy
            )
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors (and ClientErrors)
            raise RetryableDeliveryError(f"timeout: {exc!r}", kind="timeout") from exc
        except aiohttp.ClientError as exc:
            raise RetryableDeliveryError(f"connection: {exc!r}", kind="connection") from exc


def _shown(url: str) -> str:
    """``url`` without user info or query (either may hold a credential)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
