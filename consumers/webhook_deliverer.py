"""The generic webhook deliverer: POST each message as JSON to one URL, over aiohttp.

Body: ``{"id", "tenant", "conversation", "recipient", "priority", "created_ms",
"metadata", "payload", "sender", "channel"}`` with the payload passed through undecoded
(``sender`` and ``channel`` only when the message has one). Headers:
``Idempotency-Key: <message id>`` (so a provider can drop the rare redelivery), the
W3C ``traceparent`` of the delivery span, and with a secret ``X-Relayq-Signature``
(``consumers.webhook_signature``).

Outcomes: 2xx delivered (provider id from the body's ``id``/``message_id``/``sid``);
429 throttled (Retry-After honoured, no attempt used); 408, 5xx, timeouts and connection
errors retryable; every other status permanent (redirects are not followed).

The requests go through the adapters' shared client (``consumers.provider_http``: one
aiohttp session, keep-alive, the send fence in the socket write, proxy and TLS trust store
as httpx's). aiohttp, not httpx: httpcore's pool costs time quadratic in its size (at
concurrency 64 raw httpx posts about a fifteenth of what raw aiohttp does:
``python -m bench --only http``).
"""

from __future__ import annotations

import time

import aiohttp
import msgspec

from relayq.consumers.provider_http import ProviderHttp, Reply, parse_retry_after
from relayq.consumers.webhook_signature import HEADER, sign
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import PermanentDeliveryError, RetryableDeliveryError, ThrottledError
from relayq.streams.message import Message

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
    channel: str | None = None
    """The message's channel, when it names one."""


class _Reply(msgspec.Struct):
    id: str | None = None
    message_id: str | None = None
    sid: str | None = None


_encoder = msgspec.json.Encoder()
_reply_decoder = msgspec.json.Decoder(_Reply)


class WebhookDeliverer:
    """POSTs messages to ``url``. ``timeout``: seconds to connect (including the wait for
    a free connection) and between reads of the answer. ``session``: an aiohttp session to
    share (its owner closes it; this deliverer then opens none and closes none); ``http``:
    a ProviderHttp to share with other adapters (then ``timeout``, ``max_connections``,
    ``headers`` and ``session`` are its own). ``secret``: each request carries
    ``X-Relayq-Signature`` (``consumers.webhook_signature``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        headers: dict[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        secret: str | None = None,
        http: ProviderHttp | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        self.url = url
        self._headers = headers or {}
        self._owns_http = http is None
        self._http = http or ProviderHttp(
            timeout=timeout, max_connections=max_connections, session=session
        )
        self._secret = secret.encode() if secret else None

    async def aclose(self) -> None:
        """Close the client this deliverer made, if any (idempotent)."""
        if self._owns_http:
            await self._http.aclose()

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
                message.channel,
            )
        )
        headers = {**self._headers, "idempotency-key": message.id}
        if self._secret is not None:
            headers[HEADER] = sign(self._secret, body, time.time())
        return _classify(await self._http.post(self.url, body, headers))


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
