"""The Twilio adapter: SMS and ``whatsapp:`` messages through Twilio's Messages API.

One message is one form-encoded ``POST {api}/2010-04-01/Accounts/{AccountSid}/Messages.json``
with basic auth (Account SID : Auth Token)
(https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):

- ``To``: the message's recipient (``+15551234567`` or ``whatsapp:+15551234567``); on the
  ``whatsapp`` channel a bare number gets the ``whatsapp:`` prefix, and so does ``From``.
- ``From``: the message's ``sender``, else ``RELAYQ_TWILIO_FROM``; a value starting ``MG``
  is a Messaging Service and goes as ``MessagingServiceSid``.
- ``Body`` / ``MediaUrl`` from the payload ``{"body": "...", "media_url": ["https://..."]}``
  (``{"text": "..."}`` works too; anything else is dead-lettered as ``invalid_payload``).
- ``StatusCallback``: ``RELAYQ_TWILIO_STATUS_CALLBACK`` with ``relayq_id=<message id>``
  added to its query, so a receipt names its message.

A 2xx answer's ``sid`` (``SM...``) is the provider message id; errors are classified by
``twilio_codes``. The Messages API takes no idempotency key, so none is sent. The auth
token is in one precomputed header only: never in a reason, a kind, a repr or a log.
"""

from __future__ import annotations

import base64
import urllib.parse

import msgspec

from relayq.consumers.adapters.twilio_codes import classify
from relayq.consumers.provider_http import ProviderHttp, Reply, parse_retry_after
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import ConfigurationError, PermanentDeliveryError
from relayq.streams.message import Message
from relayq.streams.settings import Settings

__all__ = ("TwilioAdapter",)

_FORM = "application/x-www-form-urlencoded"
_WHATSAPP = "whatsapp:"


class _Payload(msgspec.Struct):
    body: str | None = None
    text: str | None = None
    media_url: list[str] | str = []


class _ErrorBody(msgspec.Struct):
    code: int | None = None
    message: str = ""


class _Created(msgspec.Struct):
    sid: str | None = None


_payload_decoder = msgspec.json.Decoder(_Payload)
_error_decoder = msgspec.json.Decoder(_ErrorBody)
_created_decoder = msgspec.json.Decoder(_Created)


class TwilioAdapter:
    """Delivers messages through one Twilio account. ``http``: the worker's shared client
    (its owner closes it); without one the adapter opens its own (``timeout``,
    ``max_connections``) and ``aclose()`` closes it."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        api_url: str = "https://api.twilio.com",
        default_from: str | None = None,
        status_callback: str | None = None,
        http: ProviderHttp | None = None,
        timeout: float = 10.0,
        max_connections: int = 100,
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self._secrets = (auth_token, credentials)
        self._default_from = default_from
        self._callback = urllib.parse.urlsplit(status_callback) if status_callback else None
        self._http = http or ProviderHttp(timeout=timeout, max_connections=max_connections)
        self._owns_http = http is None

    @classmethod
    def from_settings(cls, settings: Settings, http: ProviderHttp | None = None) -> TwilioAdapter:
        """The adapter ``RELAYQ_TWILIO_*`` describe; ConfigurationError names what is missing."""
        missing = [
            name
            for name, value in (
                ("RELAYQ_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                ("RELAYQ_TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"the twilio adapter needs {', '.join(missing)}")
        assert settings.twilio_account_sid and settings.twilio_auth_token
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_url=settings.twilio_api_url,
            default_from=settings.twilio_from,
            status_callback=settings.twilio_status_callback,
            http=http,
            timeout=settings.send_timeout,
            max_connections=settings.concurrency,
        )

    def __repr__(self) -> str:
        return f"TwilioAdapter(url={self._url!r})"

    async def deliver(self, message: Message) -> DeliveryResult:
        body = urllib.parse.urlencode(self._form(message), doseq=True).encode()
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        reply = await self._http.post(self._url, body, headers, content_type=_FORM)
        return self._result(reply)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def _form(self, message: Message) -> list[tuple[str, str]]:
        """The form fields of ``message``'s request, in order (lists repeat ``MediaUrl``)."""
        sender = message.sender or self._default_from
        if not sender:
            raise PermanentDeliveryError(
                "no sender: the message names none and RELAYQ_TWILIO_FROM is not set",
                kind="no_sender",
            )
        to = message.recipient
        if message.channel == "whatsapp" and not to.startswith(_WHATSAPP):
            to = _WHATSAPP + to
        fields = [("To", to), _sender_field(sender, whatsapp=to.startswith(_WHATSAPP))]
        fields += _content_fields(message.payload)
        if self._callback is not None:
            fields.append(("StatusCallback", self._callback_url(message.id)))
        return fields

    def _callback_url(self, message_id: str) -> str:
        """The status callback URL with ``relayq_id`` appended to its query (the query it
        already has is kept byte for byte: the receipt's signature covers the URL)."""
        assert self._callback is not None
        added = urllib.parse.urlencode({"relayq_id": message_id})
        query = f"{self._callback.query}&{added}" if self._callback.query else added
        return urllib.parse.urlunsplit(self._callback._replace(query=query))

    def _result(self, reply: Reply) -> DeliveryResult:
        if 200 <= reply.status < 300:
            try:
                return DeliveryResult(_created_decoder.decode(reply.body).sid)
            except msgspec.DecodeError:  # includes ValidationError
                return DeliveryResult(None)  # accepted: never resend for an odd body
        code, text = _error_fields(reply.body)
        error = classify(
            reply.status, code, self._scrub(text), parse_retry_after(reply.retry_after)
        )
        assert error is not None
        raise error

    def _scrub(self, text: str) -> str:
        """``text`` with any credential replaced (a provider's message could echo one)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _sender_field(sender: str, *, whatsapp: bool) -> tuple[str, str]:
    if sender.startswith("MG"):
        return "MessagingServiceSid", sender
    if whatsapp and not sender.startswith(_WHATSAPP):
        sender = _WHATSAPP + sender
    return "From", sender


def _content_fields(payload: bytes) -> list[tuple[str, str]]:
    """``Body`` and ``MediaUrl`` fields from the payload, or PermanentDeliveryError."""
    try:
        content = _payload_decoder.decode(payload)
    except msgspec.DecodeError as exc:  # includes ValidationError
        raise _invalid_payload(str(exc)) from None
    text = content.body if content.body is not None else content.text
    media = [content.media_url] if isinstance(content.media_url, str) else content.media_url
    if not text and not media:
        raise _invalid_payload('expected {"body": "..."} and/or {"media_url": ["..."]}')
    fields = [("Body", text)] if text else []
    return fields + [("MediaUrl", url) for url in media]


def _invalid_payload(problem: str) -> PermanentDeliveryError:
    return PermanentDeliveryError(f"invalid payload for twilio: {problem}", kind="invalid_payload")


def _error_fields(body: bytes) -> tuple[int | None, str]:
    """(code, message) of a Twilio error body; (None, a prefix of the body) otherwise."""
    try:
        error = _error_decoder.decode(body)
    except msgspec.DecodeError:  # includes ValidationError
        return None, body[:200].decode("utf-8", "replace")
    return error.code, error.message
