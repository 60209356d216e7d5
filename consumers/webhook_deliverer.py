"""The generic webhook deliverer: POST each message as JSON to one URL, over httpx.

Body: ``{"id", "tenant", "conversation", "recipient", "priority", "created_ms",
"metadata", "payload"}`` with the payload passed through undecoded. Headers:
``Idempotency-Key: <message id>`` (so a provider can drop the rare redelivery) and the
W3C ``traceparent`` of the delivery span.

Outcomes: 2xx delivered (provider id from the body's ``id``/``message_id``/``sid``);
429 throttled (Retry-After honoured, no attempt used); 408, 5xx, timeouts and connection
errors retryable; every other status permanent.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import msgspec
from opentelemetry.trace import SpanKind, Status, StatusCode

from relayq.streams.deliverer import DeliveryResult, check_send_allowed
from relayq.streams.errors import PermanentDeliveryError, RetryableDeliveryError, ThrottledError
from relayq.streams.message import Message
from relayq.streams.telemetry import inject_context, tracer, tracing_enabled

__all__ = ("WebhookDeliverer", "parse_retry_after")


class _Body(msgspec.Struct):
    id: str
    tenant: str
    conversation: str
    recipient: str
    priority: str
    created_ms: int
    metadata: dict[str, str]
    payload: msgspec.Raw


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


class _FencedStream(httpcore.AsyncNetworkStream):
    """A connection that checks the send fence right before each write to the socket.

    httpx yields to the event loop several times between the worker's fence check and the
    write (pool and connection locks); here no ``await`` separates the check from the
    socket write, so a process paused in between cannot send once it wakes up.
    """

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # An empty write sends nothing: httpcore makes one for the end of a request with a
        # Content-Length, after the whole request is on the wire. Fencing it would report
        # "not sent" for a request the provider got, and the next owner would send again.
        if buffer:
            check_send_allowed()
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _FencedStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _FencedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _FencedStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        return _FencedStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _fenced_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, its connections wrapped in _FencedStream.

    httpx takes no network backend, so the one of its httpcore pool is wrapped in place.
    """
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool
    pool._network_backend = _FencedBackend(pool._network_backend)
    return transport


class WebhookDeliverer:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        self.url = url
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = client or httpx.AsyncClient(
            timeout=timeout, headers=headers, transport=_fenced_transport(limits)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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
            )
        )
        headers = {"content-type": "application/json", "idempotency-key": message.id}
        if not tracing_enabled():
            return await self._post(body, headers)
        with tracer().start_as_current_span("POST", kind=SpanKind.CLIENT) as span:
            span.set_attributes({"http.request.method": "POST", "url.full": self.url})
            headers.update(inject_context())
            try:
                result = await self._post(body, headers, span_status=span.set_attribute)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            return result

    async def _post(
        self, body: bytes, headers: dict[str, str], span_status: object = None
    ) -> DeliveryResult:
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(f"timeout: {exc!r}", kind="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"connection: {exc!r}", kind="connection") from exc
        if callable(span_status):
            span_status("http.response.status_code", response.status_code)
        return _classify(response)


def _classify(response: httpx.Response) -> DeliveryResult:
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult(_provider_id(response.content))
    text = response.text[:500]
    retry_after = parse_retry_after(response.headers.get("retry-after"))
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
