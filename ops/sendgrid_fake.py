"""A local SendGrid: the v3 Mail Send API as SendGrid documents it, for tests and demos.

Mounted on the local provider (``SendGridFake().mount(provider)``) under ``/sendgrid``, so
``RELAYQ_SENDGRID_API_URL=<provider>/sendgrid``:

- ``POST /sendgrid/v3/mail/send``: checks ``Authorization: Bearer <api_key>`` (401 with
  SendGrid's body otherwise) and ``Content-Type: application/json`` (415), validates the
  body as SendGrid does (400 listing every problem: no ``personalizations``, no ``to``, no
  ``from.email``, no ``subject``, no ``content`` or an empty content value, addresses that
  are not addresses), and answers ``202`` with an empty body and an ``X-Message-Id``.
- ``POST|DELETE /sendgrid/_faults``: fault rules (``ops.fake_http``), matched on the
  recipient (the first ``to`` email) and the sender (``from.email``). A rule's ``status``
  answers with SendGrid's body for it (429 carries ``X-RateLimit-*`` headers, the reset
  ``retry_after`` seconds ahead; without ``retry_after`` no reset header); its ``code`` is
  one of :data:`FAULT_CODES` (e.g. ``sender_identity``: the 403 over an unverified From).
- ``GET /sendgrid/_requests``: every request so far with its decoded fields and answer.

Error bodies: ``{"errors": [{"message", "field", "help"}]}`` (SendGrid's v3 error format,
https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors;
the messages are those of https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
and of the rate-limit page). The fake never imports relayq's adapter: it is checked against
the documentation, not against our client.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from typing import Any

import msgspec

from relayq.ops.fake_http import Answer, FakeRequest, Fault, FaultBook, json_answer
from relayq.ops.local_provider import LocalProvider

__all__ = ("FAULT_CODES", "PREFIX", "SendGridFake", "SentMail")

PREFIX = "/sendgrid"
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
_MAX_BYTES = 30 * 1024 * 1024
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")

_ErrorItem = tuple[str | None, str]
"""(field, message) of one entry of SendGrid's ``errors`` list."""

_STATUS_ERRORS: dict[int, _ErrorItem] = {
    400: (None, "Bad Request"),
    401: (None, "The provided authorization grant is invalid, expired, or revoked"),
    403: (None, "access forbidden"),
    413: (None, "The JSON payload you have included in your request is too large."),
    429: (None, "too many requests"),
    500: (None, "internal server error"),
    503: (None, "The SendGrid v3 Web API is not available."),
}
"""A fault's body by status (another status: SendGrid's generic body for 4xx/5xx)."""

FAULT_CODES: dict[str, tuple[int, _ErrorItem]] = {
    "sender_identity": (
        403,
        (
            "from",
            "The from address does not match a verified Sender Identity. Mail cannot be "
            "sent until this error is resolved. Visit https://sendgrid.com/docs/for-"
            "developers/sending-email/sender-identity/ to see the Sender Identity "
            "requirements",
        ),
    ),
    "invalid_recipient": (
        400,
        ("personalizations.0.to.0.email", "Does not contain a valid address."),
    ),
    "credits_exceeded": (401, (None, "Maximum credits exceeded")),
}
"""A fault rule's ``code``: a documented SendGrid error (status, (field, message))."""


class SentMail(msgspec.Struct, frozen=True, kw_only=True):
    """One request to Mail Send as the fake decoded it, with its answer."""

    status: int
    to: str | None = None
    sender: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    reply_to: str | None = None
    custom_args: dict[str, str] = {}
    message_id: str | None = None
    """The ``X-Message-Id`` answered (202 only)."""
    arrived_ns: int = 0


class SendGridFake:
    """SendGrid's Mail Send on the local provider. ``api_key``: the one key it accepts."""

    def __init__(self, api_key: str = "SG.local-test-key", *, latency: float = 0.0) -> None:
        self.api_key = api_key
        self.latency = latency
        self.faults = FaultBook()
        self.requests: list[SentMail] = []

    def mount(self, provider: LocalProvider) -> None:
        provider.mount(PREFIX, self.handle)

    async def handle(self, request: FakeRequest) -> Answer:
        control = self.faults.control(request)
        if control is not None:
            return control
        if request.path == f"{PREFIX}/_requests" and request.method == "GET":
            return json_answer(200, self.requests)
        if request.path != f"{PREFIX}/v3/mail/send":
            return _errors(404, [(None, "not found")])
        if request.method != "POST":
            return _errors(405, [(None, "POST method allowed only")])
        return await self._mail_send(request)

    async def _mail_send(self, request: FakeRequest) -> Answer:
        arrived_ns = time.time_ns()
        body = _json_object(request.body)
        fields = _fields(body)
        fault = self.faults.take(
            recipient=fields.get("to"), sender=fields.get("sender"), tenant=None
        )
        if fault is not None:
            await self.faults.apply_transport(fault)
        if self.latency:
            await asyncio.sleep(self.latency)
        answer = self._answer(request, body, fault)
        message_id = answer[1].get("X-Message-Id")
        self.requests.append(
            SentMail(status=answer[0], message_id=message_id, arrived_ns=arrived_ns, **fields)
        )
        return answer

    def _answer(
        self, request: FakeRequest, body: dict[str, Any] | None, fault: Fault | None
    ) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(401, [_STATUS_ERRORS[401]])
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _errors(415, [(None, "Content-Type should be application/json.")])
        if len(request.body) > _MAX_BYTES:
            return _errors(413, [_STATUS_ERRORS[413]])
        if body is None:
            return _errors(400, [_STATUS_ERRORS[400]])
        problems = _validate(body)
        if problems:
            return _errors(400, problems)
        if fault is not None and (fault.status or fault.code):
            return _fault_answer(fault)
        return 202, {"X-Message-Id": secrets.token_urlsafe(16)[:22]}, b""


def _fault_answer(fault: Fault) -> Answer:
    if fault.code is not None:
        status, item = FAULT_CODES.get(fault.code, (400, (None, fault.code)))
    else:
        status = fault.status or 500
        item = _STATUS_ERRORS.get(status, (None, f"HTTP {status}"))
    status = fault.status or status
    headers: dict[str, str] = {}
    if status == 429:
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
        if fault.retry_after is not None:
            headers["X-RateLimit-Reset"] = str(math.ceil(time.time() + fault.retry_after))
    return _errors(status, [item], headers)


def _errors(status: int, items: list[_ErrorItem], headers: dict[str, str] | None = None) -> Answer:
    anchor = {"from": "message.from", "subject": "message.subject", "content": "message.content"}
    errors = [
        {
            "message": message,
            "field": field,
            "help": f"{_HELP}#{anchor.get(field.split('.')[0], field)}" if field else None,
        }
        for field, message in items
    ]
    return json_answer(status, {"errors": errors}, headers)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return body if isinstance(body, dict) else None


def _fields(body: dict[str, Any] | None) -> dict[str, Any]:
    """The request's recorded fields (whatever of them it has)."""
    if body is None:
        return {}
    content = {item.get("type"): item.get("value") for item in _dicts(body.get("content"))}
    custom_args = body.get("custom_args")
    return {
        "to": _first_to(body),
        "sender": _email(body.get("from")),
        "subject": body.get("subject") if isinstance(body.get("subject"), str) else None,
        "text": content.get("text/plain"),
        "html": content.get("text/html"),
        "reply_to": _email(body.get("reply_to")),
        "custom_args": custom_args if isinstance(custom_args, dict) else {},
    }


def _validate(body: dict[str, Any]) -> list[_ErrorItem]:
    """Every problem SendGrid reports for this body, in its order (empty: valid)."""
    return [*_personalization_problems(body), *_message_problems(body)]


def _personalization_problems(body: dict[str, Any]) -> list[_ErrorItem]:
    personalizations = _dicts(body.get("personalizations"))
    if not personalizations:
        return [
            (
                "personalizations",
                "The personalizations field is required and must have at least one "
                "personalization.",
            )
        ]
    problems: list[_ErrorItem] = []
    for index, personalization in enumerate(personalizations):
        recipients = _dicts(personalization.get("to"))
        if not recipients:
            problems.append(
                (
                    f"personalizations.{index}.to",
                    "The to parameter is required for all personalization objects.",
                )
            )
        for number, recipient in enumerate(recipients):
            if not _ADDRESS.match(str(recipient.get("email", ""))):
                field = f"personalizations.{index}.to.{number}.email"
                problems.append((field, "Does not contain a valid address."))
    return problems


def _message_problems(body: dict[str, Any]) -> list[_ErrorItem]:
    problems: list[_ErrorItem] = []
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        problems.append(
            (
                "from.email",
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.  "
                'e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", '
                '"name" : "Example Recipient"}.',
            )
        )
    elif not _ADDRESS.match(str(sender["email"])):
        problems.append(("from.email", "Does not contain a valid address."))
    if not body.get("subject"):
        problems.append(
            (
                "subject",
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
            )
        )
    problems.extend(_content_problems(body.get("content")))
    return problems


def _content_problems(content: object) -> list[_ErrorItem]:
    blocks = _dicts(content)
    if not blocks:
        return [
            (
                "content",
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
            )
        ]
    return [
        (
            f"content.{index}.value",
            "The content value must be a string at least one character in length.",
        )
        for index, block in enumerate(blocks)
        if not isinstance(block.get("value"), str) or not block["value"]
    ]


def _dicts(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _email(value: object) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("email"), str):
        return str(value["email"])
    return None


def _first_to(body: dict[str, Any]) -> str | None:
    for personalization in _dicts(body.get("personalizations")):
        for recipient in _dicts(personalization.get("to")):
            return _email(recipient)
    return None
