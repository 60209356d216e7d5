"""The generic webhook deliverer: POST each message as JSON to one URL, over aiohttp.

Body: ``{"id", "tenant", "conversation", "recipient", "priority", "created_ms",
"metadata", "payload", "sender"}`` with the payload passed through undecoded (``sender``
only when the message has one). Headers:
``Idempotency-Key: <message id>`` (so a provider can drop the rare redelivery), the
W3C ``traceparent`` of the delivery span, and with a secret ``X-Relayq-Signature``
(``consumers.webhook_signature``).

Outcomes: 2xx delivered (provider id from the body's ``id``/``message_id``/``sid``);
429 throttled (Retry-After honoured, no attempt used); 408, 5xx, timeouts and connection
errors retryable; every other status permanent (redirects are not followed).

The requests go through one aiohttp session (keep-alive, up to ``max_connections``),
opened on the first delivery inside the running loop and closed by ``aclose()``; each
request's bytes leave under the send fence (``consumers.fenced_http``). aiohttp, not httpx:
httpcore's pool costs time quadratic in its size (at concurrency 64 raw httpx posts about a
fifteenth of what raw aiohttp does: ``python -m bench --only http``). Kept from httpx's
client: the proxy from ``HTTP(S)_PROXY``/``NO_PROXY`` and its TLS trust store
(certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), read once when the session opens.
"""

from __future__ import annotations

import email.utils
import time
import urllib.parse
import urllib.request

import aiohttp
import httpx
import msgspec
from opentelemetry.trace import SpanKind, Status, StatusCode

from relayq.consumers.fenced_http import Reply, post
from relayq.consumers.webhook_signature import HEADER, sign
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import PermanentDeliveryError, RetryableDeliveryError, ThrottledError
from relayq.streams.message import Message
from relayq.streams.telemetry import inject_context, tracer, tracing_enabled

__all__ = ("WebhookDeliverer", "parse_retry_after")


class _Body(msgspec.Struct, omit_defaults=True):
    id: str
    tenant: str
    conversation: str
    recipient: str
    priority: str
    created_ms: int
    metadata: dict[str, str]
    payload: msgspec.Raw
    sender: str | None = None
    """The sending identity (a gateway's "from" number); left out when the message has none."""


class _Reply(msgspec.Struct):
    id: str | None = None
    message_id: str | None = None
    sid: str | None = None


_encoder = msgspec.json.Encoder()
_reply_decoder = msgspec.json.Decoder(_Reply)


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


class WebhookDeliverer:
    """POSTs messages to ``url``. ``timeout``: seconds to connect (including the wait for
    a free connection) and between reads of the answer. ``session``: an aiohttp session to
    share (its owner closes it; this deliverer then opens none and closes none).
    ``secret``: each request carries ``X-Relayq-Signature`` (``consumers.webhook_signature``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        headers: dict[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        secret: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._max_connections = max_connections
        self._headers = headers
        self._session = session
        self._owns_session = session is None
        self._proxy = _env_proxy(url)
        self._secret = secret.encode() if secret else None

    def _open_session(self) -> aiohttp.ClientSession:
        """The session, opened on first use (inside the running loop, which it belongs to)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=httpx.create_ssl_context()
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers=self._headers,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session this deliverer opened, if any (idempotent)."""
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def deliver(self, message: Message) -> DeliveryResult:
        body = _encoder.encode(
            _Body(
                message.id,
                message.tenant,
                message.conversation,
                message.recipient,
                message.priority,
                message.created_ms,
                message.metadata,
                msgspec.Raw(message.payload),
                message.sender,
            )
        )
        headers = {"idempotency-key": message.id}
        if self._secret is not None:
            headers[HEADER] = sign(self._secret, body, time.time())
        if not tracing_enabled():
            return _classify(await self._post(body, headers))
        with tracer().start_as_current_span("POST", kind=SpanKind.CLIENT) as span:
            span.set_attributes({"http.request.method": "POST", "url.full": self.url})
            headers.update(inject_context())
            try:
                reply = await self._post(body, headers)
                span.set_attribute("http.response.status_code", reply.status)
                return _classify(reply)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise

    async def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        try:
            return await post(self._open_session(), self.url, body, headers, proxy=self._proxy)
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors (and ClientErrors)
            raise RetryableDeliveryError(f"timeout: {exc!r}", kind="timeout") from exc
        except aiohttp.ClientError as exc:
            raise RetryableDeliveryError(f"connection: {exc!r}", kind="connection") from exc


def _classify(reply: Reply) -> DeliveryResult:
    status = reply.status
    if 200 <= status < 300:
        return DeliveryResult(_provider_id(reply.body))
    text = reply.body.decode("utf-8", "replace")[:500]
    retry_after = parse_retry_after(reply.retry_after)
    if status == 429:
        raise ThrottledError(f"HTTP 429: {text}", retry_after=retry_after)
    if status == 408 or status >= 500:
        raise RetryableDeliveryError(
            f"HTTP {status}: {text}", retry_after=retry_after, kind=f"http_{status}"
        )
    raise PermanentDeliveryError(f"HTTP {status}: {text}", kind=f"http_{status}")


def _provider_id(content: bytes) -> str | None:
    if not content:
        return None
    try:
        reply = _reply_decoder.decode(content)
    except msgspec.DecodeError:
        return None
    return reply.id or reply.message_id or reply.sid
