"""The WhatsApp Cloud API adapter: each message is one ``POST
{whatsapp_api_url}/{phone-number-id}/messages`` with the access token as a bearer token.

The phone number id is the message's ``sender``, else ``RELAYQ_WHATSAPP_PHONE_NUMBER_ID``.
The payload is the Cloud API message object without the fields relayq sets
(``messaging_product``, ``recipient_type``, ``to``, ``biz_opaque_callback_data``):

- ``{"type": "text", "text": {"body": "hi", "preview_url": false}}``
- ``{"type": "template", "template": {"name": ..., "language": {"code": ...}, ...}}``
- ``{"type": "image", "image": {"link": ...}}`` and likewise ``audio``, ``video``,
  ``document``, ``sticker``; also ``interactive``, ``location`` and ``reaction``
- ``{"text": "hi"}``: shorthand for a text message; ``{"text": {...}}`` without ``type`` is
  a text message too (the Cloud API's default type)
- any of these may carry ``context`` (``{"message_id": <wamid>}``: a reply).

Anything else is dead-lettered at once (PermanentDeliveryError, kind ``invalid_payload``).
The request body is spliced from bytes: the payload's members are copied as they are, after
relayq's own (the recipient and relayq's message id, which travels in
``biz_opaque_callback_data`` so status webhooks can be matched to the message).

A 2xx answer gives ``messages[0].id``, the ``wamid``: the DeliveryResult's provider id.
Errors are classified by Meta's code (``consumers.adapters.whatsapp_codes``). The token is
never part of a reason, a repr or a log line; reasons are scrubbed of it even if a server
echoed it back.
"""

from __future__ import annotations

import msgspec
import structlog

from relayq.consumers.adapters.whatsapp_codes import classify
from relayq.consumers.provider_http import ProviderHttp, Reply, parse_retry_after
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import ConfigurationError, DeliveryError, PermanentDeliveryError
from relayq.streams.message import Message
from relayq.streams.settings import Settings

__all__ = ("MESSAGE_TYPES", "WhatsAppAdapter")

MESSAGE_TYPES = frozenset(
    {
        "text",
        "template",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "interactive",
        "location",
        "reaction",
    }
)
"""Message types a payload may name; each carries an object under its own name."""

_SET_BY_RELAYQ = frozenset(
    {"messaging_product", "recipient_type", "to", "biz_opaque_callback_data"}
)
_OPTIONAL_MEMBERS = frozenset({"context"})

_log = structlog.get_logger(__name__)
_encoder = msgspec.json.Encoder()
_members_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_str_decoder = msgspec.json.Decoder(str)


class _Sent(msgspec.Struct):
    id: str


class _SendReply(msgspec.Struct):
    messages: list[_Sent] = []


class _ErrorData(msgspec.Struct):
    details: str = ""


class _Error(msgspec.Struct):
    message: str = ""
    code: int | None = None
    error_subcode: int | None = None
    error_data: _ErrorData | None = None


class _ErrorReply(msgspec.Struct):
    error: _Error


_reply_decoder = msgspec.json.Decoder(_SendReply)
_error_decoder = msgspec.json.Decoder(_ErrorReply)


def _invalid(message: Message, problem: str) -> PermanentDeliveryError:
    return PermanentDeliveryError(
        f"whatsapp payload of message {message.id}: {problem}", kind="invalid_payload"
    )


def _text_shorthand(members: dict[str, msgspec.Raw], message: Message) -> bytes:
    """The members of ``{"text": "hi"}`` or ``{"text": {...}}`` as a typed text message."""
    raw = bytes(members["text"]).strip()
    if raw.startswith(b'"'):
        return b'"type":"text","text":{"body":' + raw + b"}"
    if raw.startswith(b"{"):
        return b'"type":"text","text":' + raw
    raise _invalid(message, "text must be a string or an object")


def _payload_members(message: Message) -> bytes:
    """The payload's members, checked, as bytes to splice after relayq's own."""
    try:
        members = _members_decoder.decode(message.payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _invalid(message, "not a JSON object") from None
    clashing = sorted(_SET_BY_RELAYQ.intersection(members))
    if clashing:
        raise _invalid(message, f"{', '.join(clashing)} are set by relayq")
    if "type" not in members:
        if "text" not in members or set(members) - {"text"} - _OPTIONAL_MEMBERS:
            raise _invalid(message, 'expected {"type": ..., <type>: {...}} or {"text": "..."}')
        typed = _text_shorthand(members, message)
        rest = b"".join(
            b"," + _encoder.encode(name) + b":" + bytes(members[name])
            for name in sorted(_OPTIONAL_MEMBERS.intersection(members))
        )
        return typed + rest
    _check_typed(members, message)
    return message.payload.strip()[1:-1]


def _check_typed(members: dict[str, msgspec.Raw], message: Message) -> None:
    try:
        kind = _str_decoder.decode(members["type"])
    except msgspec.ValidationError:
        raise _invalid(message, "type must be a string") from None
    if kind not in MESSAGE_TYPES:
        raise _invalid(message, f"type {kind!r} is not one of {', '.join(sorted(MESSAGE_TYPES))}")
    content = members.get(kind)
    if content is None or not bytes(content).lstrip().startswith(b"{"):
        raise _invalid(message, f"type {kind} needs an object under {kind!r}")
    others = set(members) - {"type", kind} - _OPTIONAL_MEMBERS
    if others:
        raise _invalid(message, f"unexpected members {', '.join(sorted(others))}")


class WhatsAppAdapter:
    """Delivers messages through the WhatsApp Cloud API. ``http``: the worker's shared
    client (its owner closes it); without one the adapter opens (and closes) its own."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str,
        phone_number_id: str,
        http: ProviderHttp | None = None,
        timeout: float = 10.0,
        max_connections: int = 100,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"RELAYQ_WHATSAPP_API_URL must start with http:// or https://, got {api_url!r}"
            )
        self._api_url = api_url.rstrip("/")
        self._token = token
        self._authorization = f"Bearer {token}"
        self._phone_number_id = phone_number_id
        self._owns_http = http is None
        self._http = http or ProviderHttp(timeout=timeout, max_connections=max_connections)

    @classmethod
    def from_settings(cls, settings: Settings, http: ProviderHttp | None = None) -> WhatsAppAdapter:
        """Raises ConfigurationError naming the missing variables (never a value)."""
        token, number = settings.whatsapp_token, settings.whatsapp_phone_number_id
        if not token or not number:
            missing = [
                variable
                for variable, value in (
                    ("RELAYQ_WHATSAPP_TOKEN", token),
                    ("RELAYQ_WHATSAPP_PHONE_NUMBER_ID", number),
                )
                if not value
            ]
            raise ConfigurationError(f"the whatsapp adapter needs {' and '.join(missing)}")
        return cls(
            api_url=settings.whatsapp_api_url,
            token=token,
            phone_number_id=number,
            http=http,
            timeout=settings.send_timeout,
            max_connections=settings.concurrency,
        )

    def __repr__(self) -> str:
        number = self._phone_number_id
        return f"WhatsAppAdapter(api_url={self._api_url!r}, phone_number_id={number!r})"

    def url(self, message: Message) -> str:
        """Where ``message`` is POSTed: its sender's (or the default) phone number id."""
        return f"{self._api_url}/{message.sender or self._phone_number_id}/messages"

    def body(self, message: Message) -> bytes:
        """The request body; raises PermanentDeliveryError for a payload it cannot send."""
        members = _payload_members(message)
        head = (
            b'{"messaging_product":"whatsapp","recipient_type":"individual","to":'
            + _encoder.encode(message.recipient)
            + b',"biz_opaque_callback_data":'
            + _encoder.encode(message.id)
        )
        return head + b"," + members + b"}"

    async def deliver(self, message: Message) -> DeliveryResult:
        body = self.body(message)
        reply = await self._http.post(
            self.url(message), body, {"Authorization": self._authorization}
        )
        if 200 <= reply.status < 300:
            return self._delivered(message, reply)
        raise self._error(reply)

    def _delivered(self, message: Message, reply: Reply) -> DeliveryResult:
        try:
            sent = _reply_decoder.decode(reply.body).messages
        except (msgspec.DecodeError, msgspec.ValidationError):
            sent = []
        if not sent:
            # Accepted all the same: sending it again would send it twice.
            _log.warning("whatsapp_reply_without_wamid", message_id=message.id)
            return DeliveryResult(None)
        return DeliveryResult(sent[0].id)

    def _error(self, reply: Reply) -> DeliveryError:
        code, text = _error_fields(reply.body)
        text = text.replace(self._token, "***") if self._token in text else text
        error = classify(reply.status, code, text, parse_retry_after(reply.retry_after))
        assert error is not None  # classify returns None only for a 2xx without a code
        return error

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def _error_fields(body: bytes) -> tuple[int | None, str]:
    """Meta's error code and message (with its details), or the start of a foreign body."""
    try:
        error = _error_decoder.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, body[:200].decode("utf-8", "replace").strip()
    text = error.message
    if error.error_data is not None and error.error_data.details:
        text = f"{text} ({error.error_data.details})" if text else error.error_data.details
    if error.error_subcode is not None:
        text = f"{text} [subcode {error.error_subcode}]"
    return error.code, text
