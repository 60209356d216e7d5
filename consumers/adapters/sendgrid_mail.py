"""The SendGrid adapter: each message is one v3 Mail Send request.

``POST {RELAYQ_SENDGRID_API_URL}/v3/mail/send`` with ``Authorization: Bearer <key>`` and
the documented body::

    {"personalizations": [{"to": [{"email": "<recipient>"}]}],
     "from": {"email": "<sender or RELAYQ_EMAIL_FROM>", "name"?: ...},
     "reply_to"?: {"email": ...},
     "subject": "...",
     "content": [{"type": "text/plain", "value": ...}, {"type": "text/html", "value": ...}],
     "custom_args": {"relayq_id": "<message id>"}}

(the payload's format: ``consumers.adapters.email_payload``). ``custom_args`` come back in
SendGrid's event webhooks, so an event maps to its relayq message. SendGrid answers 202
with the ``X-Message-Id`` header: that is the provider id. Errors are classified by
``consumers.adapters.sendgrid_codes``; a 429 waits until ``X-RateLimit-Reset``. SendGrid
takes no idempotency key on Mail Send, so a redelivery after a crash is not deduplicated
by SendGrid. The key travels only in the Authorization header and is scrubbed from any
error text.
"""

from __future__ import annotations

import msgspec

from relayq.consumers.adapters.email_payload import Address, Email, email_of
from relayq.consumers.adapters.sendgrid_codes import SENDER_IDENTITY_KIND, classify
from relayq.consumers.adapters.sendgrid_codes import seconds_until_reset as _until_reset
from relayq.consumers.provider_http import ProviderHttp, Reply, parse_retry_after
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import ChannelDownError, ConfigurationError
from relayq.streams.message import Message
from relayq.streams.settings import Settings

__all__ = ("SendGridAdapter",)

_MAX_REASON = 500


class _Personalization(msgspec.Struct):
    to: list[Address]


class _Content(msgspec.Struct):
    type: str
    value: str


class _MailSend(msgspec.Struct, omit_defaults=True):
    personalizations: list[_Personalization]
    from_: Address = msgspec.field(name="from")
    subject: str = ""
    content: list[_Content] = []
    custom_args: dict[str, str] = {}
    reply_to: Address | None = None


class _Error(msgspec.Struct):
    message: str | None = None
    field: str | None = None


class _Errors(msgspec.Struct):
    errors: list[_Error] = []


_encoder = msgspec.json.Encoder()
_errors_decoder = msgspec.json.Decoder(_Errors)


class SendGridAdapter:
    """Sends email through SendGrid's v3 Mail Send API (a Deliverer).

    ``http``: the worker's shared client (its owner closes it); without one the adapter
    opens its own (``timeout``, ``max_connections``) and ``aclose`` closes it.
    """

    name = "sendgrid"
    """How a fallback chain's reasons call it."""

    def __init__(
        self,
        api_key: str,
        *,
        email_from: str | None,
        api_url: str = "https://api.sendgrid.com",
        http: ProviderHttp | None = None,
        timeout: float = 10.0,
        max_connections: int = 100,
    ) -> None:
        self._api_key = api_key
        self._email_from = email_from
        self._url = api_url.rstrip("/") + "/v3/mail/send"
        self._owns_http = http is None
        self._http = http or ProviderHttp(timeout=timeout, max_connections=max_connections)

    @classmethod
    def from_settings(cls, settings: Settings, http: ProviderHttp | None = None) -> SendGridAdapter:
        """Raises ConfigurationError naming the missing RELAYQ_* variables."""
        key, sender = settings.sendgrid_api_key, settings.email_from
        if not key or not sender:
            needed = {"RELAYQ_SENDGRID_API_KEY": key, "RELAYQ_EMAIL_FROM": sender}
            missing = " and ".join(name for name, value in needed.items() if not value)
            raise ConfigurationError(f"the sendgrid adapter needs {missing}")
        return cls(
            key,
            email_from=sender,
            api_url=settings.sendgrid_api_url,
            http=http,
            timeout=settings.send_timeout,
            max_connections=settings.concurrency,
        )

    async def deliver(self, message: Message) -> DeliveryResult:
        mail = email_of(message, self._email_from)
        headers = {"Authorization": f"Bearer {self._api_key}"}
        reply = await self._http.post(self._url, _body(mail, message.id), headers)
        error = classify(reply.status, *self._details(reply))
        if error is None:
            return DeliveryResult(reply.headers.get("X-Message-Id") or None)
        if error.kind == SENDER_IDENTITY_KIND and message.sender is None:
            # The channel's own default From is refused: every message would be.
            raise ChannelDownError(error.reason, kind=error.kind) from None
        raise error

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def _details(self, reply: Reply) -> tuple[str | None, str, float | None]:
        """(first error's field, the error messages, seconds to wait) of a failed answer."""
        field, text = _errors_of(reply.body)
        text = text.replace(self._api_key, "***")[:_MAX_REASON]
        wait = _until_reset(reply.headers.get("X-RateLimit-Reset"))
        if wait is None:
            wait = parse_retry_after(reply.retry_after)
        return field, text, wait


def _body(mail: Email, message_id: str) -> bytes:
    content = []
    if mail.text:
        content.append(_Content("text/plain", mail.text))  # SendGrid: text/plain first
    if mail.html:
        content.append(_Content("text/html", mail.html))
    return _encoder.encode(
        _MailSend(
            personalizations=[_Personalization([mail.to])],
            from_=mail.sender,
            subject=mail.subject,
            content=content,
            custom_args={"relayq_id": message_id},
            reply_to=mail.reply_to,
        )
    )


def _errors_of(body: bytes) -> tuple[str | None, str]:
    """The first error's field and every error as ``field: message``; the raw body (cut)
    when it is not SendGrid's error format."""
    try:
        errors = _errors_decoder.decode(body).errors
    except (msgspec.DecodeError, msgspec.ValidationError):
        errors = []
    if not errors:
        return None, body.decode("utf-8", "replace")[:_MAX_REASON] or "(no body)"
    text = "; ".join(
        f"{error.field}: {error.message}" if error.field else str(error.message) for error in errors
    )
    return errors[0].field, text
