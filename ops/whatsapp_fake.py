"""A fake of the WhatsApp Cloud API for the local provider: the send-message endpoint, its
error bodies and its status webhooks, written from Meta's public documentation (not from
relayq's client, which it never imports).

Mount it (``fake.mount(provider)``) and point ``RELAYQ_WHATSAPP_API_URL`` at
``provider.base_url("/whatsapp")`` (a version segment such as ``/v21.0`` may follow).

Requests (developers.facebook.com/documentation/business-messaging/whatsapp/messages/
send-messages):

- ``POST <prefix>[/<version>]/<phone-number-id>/messages`` with ``Authorization: Bearer
  <token>`` and a JSON body ``{"messaging_product": "whatsapp", "recipient_type":
  "individual", "to": ..., "type": ..., <type>: {...}, "biz_opaque_callback_data": ...}``.
  A wrong or missing token: 401, code 190. A malformed body (not JSON, messaging_product not
  ``whatsapp``, no ``to``, an unknown ``type``, no object under the type, a text without
  ``body``, a template without ``name``/``language``, media without ``link``/``id``): 400,
  code 100. A phone number id outside ``phone_number_ids`` (when given): 400, code 100,
  subcode 33. Accepted: 200 ``{"messaging_product": "whatsapp", "contacts": [{"input": to,
  "wa_id": ...}], "messages": [{"id": "wamid.<unique>"}]}``.
- ``POST|DELETE <prefix>/_faults``: fault rules (``ops.fake_http``); ``GET
  <prefix>/_requests``: every request recorded (:class:`RecordedRequest`) as JSON.

Faults (``ops.fake_http.Fault``) match ``recipient`` (the body's ``to``) or ``sender`` (the
phone number id in the path). ``tenant`` never matches: the Cloud API's request carries no
tenant (``biz_opaque_callback_data`` holds relayq's message id, not its tenant). A fault's
``code`` is answered as Meta's error body ``{"error": {"message": "(#<code>) <title>",
"type": "OAuthException", "code", "error_data": {"messaging_product", "details"},
"fbtrace_id"}}`` with the HTTP status Meta documents for that code (``status`` overrides it;
``retry_after`` adds a Retry-After header). A ``code`` with a 2xx ``status`` (e.g.
``Fault(match="recipient", value=..., code="131026", status=200)``) means: accept the send,
then report it ``failed`` with that code in a status webhook, as Meta does for errors found
after the send. ``status`` without ``code`` answers that status with a body that has no Meta
code (a proxy's or load balancer's answer).

Status webhooks (developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/
reference/messages/status): with a :class:`CallbackPlan`, each accepted message gets one
notification per status, ``{"object": "whatsapp_business_account", "entry": [{"id":
<waba id>, "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
"metadata": {"display_phone_number", "phone_number_id"}, "statuses": [{"id": <wamid>,
"status", "timestamp", "recipient_id", "biz_opaque_callback_data"[, "errors"]}]}}]}]}``,
signed ``X-Hub-Signature-256`` with the app secret. They are POSTed from background tasks
(one per message, in the plan's order); :meth:`WhatsAppFake.stop` waits for them a moment,
then cancels the rest. Unlike Meta, a webhook the receiver refuses is not retried.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import aiohttp
import msgspec

from relayq.ops.fake_http import Answer, FakeRequest, Fault, FaultBook, ResetConnection, json_answer
from relayq.ops.local_provider import LocalProvider
from relayq.ops.receipt_signatures import WHATSAPP_HEADER, whatsapp_signature

__all__ = ("ERRORS", "CallbackPlan", "CallbackSent", "RecordedRequest", "WhatsAppFake")

_ERROR_CODES = (
    "developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes"
)

ERRORS: dict[int, tuple[int, str, str]] = {
    0: (401, "AuthException", "We were unable to authenticate the app user."),
    2: (503, "API Service", "Temporary due to downtime or due to being overloaded."),
    4: (400, "API Too Many Calls", "The app has reached its API call rate limit."),
    10: (403, "Permission Denied", "Permission is either not granted or has been removed."),
    100: (400, "Invalid parameter", "The request included unsupported or misspelled parameters."),
    190: (401, "Access token has expired", "Your access token has expired."),
    368: (403, "Temporarily blocked for policies violations", "The account is restricted."),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: (400, "Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131008: (400, "Required parameter is missing", "The request is missing a required parameter."),
    131009: (400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: (503, "Service unavailable", "A service is temporarily unavailable."),
    131026: (
        400,
        "Message Undeliverable",
        "Unable to deliver message: the recipient is not a WhatsApp user, has not accepted "
        "the terms of service, or uses an old WhatsApp version.",
    ),
    131031: (403, "Account has been locked", "The WhatsApp Business Account is locked."),
    131047: (
        400,
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
    ),
    131048: (
        400,
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages can be "
        "sent from this phone number.",
    ),
    131051: (400, "Unsupported message type", "Unsupported message type."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
    132000: (
        400,
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values included in the request did not match the "
        "number of variable parameters defined in the template.",
    ),
    132001: (
        404,
        "Template name does not exist in the translation",
        "The template does not exist in the specified language or has not been approved.",
    ),
}
"""Meta's code -> (HTTP status, title, details), from Meta's error-code table."""

_MEDIA = frozenset({"image", "audio", "video", "document", "sticker"})
_TYPES = _MEDIA | {"text", "template", "interactive", "location", "reaction", "contacts"}
_STATUS_TITLES = {131026: "Message undeliverable"}
"""Titles Meta uses in status webhooks where they differ from the synchronous ones."""


class RecordedRequest(msgspec.Struct, kw_only=True):
    """One request as the fake saw it (never its token)."""

    method: str
    path: str
    arrived_ns: int
    phone_number_id: str | None = None
    authorized: bool = False
    to: str | None = None
    type: str | None = None
    biz_opaque_callback_data: str | None = None
    message: Any = None
    """The decoded JSON body (None when it was not JSON)."""
    status: int = 0
    """The answer's HTTP status; 0: none (the connection was reset, or still waiting)."""
    error_code: int | None = None
    wamid: str | None = None


class CallbackPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The status webhooks sent after each accepted message."""

    url: str
    app_secret: str
    statuses: tuple[str, ...] = ("sent", "delivered", "read")
    out_of_order: bool = False
    """Send the sequence reversed (``read`` before ``delivered`` before ``sent``)."""
    duplicate: bool = False
    """Send each status twice."""
    delay: float = 0.0
    """Seconds before each webhook."""

    def sequence(self, failure_code: int | None) -> list[str]:
        statuses = ["failed"] if failure_code is not None else list(self.statuses)
        if self.duplicate:
            statuses = [status for status in statuses for _ in (0, 1)]
        return statuses[::-1] if self.out_of_order else statuses


class CallbackSent(msgspec.Struct, frozen=True):
    """One status webhook and the receiver's answer (``answer`` 0: it could not be sent)."""

    wamid: str
    status: str
    answer: int
    error: str | None = None


_counter = itertools.count(1)
_trace_ids = itertools.count(1)


def _graph_error(
    status: int,
    code: int,
    message: str,
    details: str,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
    retry_after: float | None = None,
) -> Answer:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": f"Afake{next(_trace_ids):08d}",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return json_answer(status, {"error": error}, headers)


def _coded_error(code: int, status: int | None, retry_after: float | None) -> Answer:
    """Meta's error body for ``code`` (``status``: instead of the documented one)."""
    documented, title, details = ERRORS.get(code, (400, "Unknown error", f"code {code}"))
    subcode = 463 if code == 190 else None
    return _graph_error(
        status or documented,
        code,
        f"(#{code}) {title}",
        details,
        subcode=subcode,
        retry_after=retry_after,
    )


def _invalid(details: str) -> Answer:
    return _graph_error(400, 100, "(#100) Invalid parameter", details)


def _problem(body: dict[str, Any]) -> str | None:
    """Why Meta would refuse this send-message body (None: it is well formed)."""
    if body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required and must be whatsapp."
    if not isinstance(body.get("to"), str) or not body["to"]:
        return "The parameter to is required."
    if body.get("recipient_type", "individual") not in ("individual", "group"):
        return "Param recipient_type must be individual or group."
    kind = body.get("type", "text")
    if kind not in _TYPES:
        return f"Param type must be one of {sorted(_TYPES)}; got {kind!r}."
    content = body.get(kind)
    if not isinstance(content, list if kind == "contacts" else dict):
        return f"The parameter {kind} is required."
    return _content_problem(kind, content)


def _content_problem(kind: str, content: Any) -> str | None:
    if kind == "text" and not (isinstance(content.get("body"), str) and content["body"]):
        return "The parameter text['body'] is required."
    if kind == "template" and not (
        content.get("name") and isinstance(content.get("language"), dict)
    ):
        return "The parameters template['name'] and template['language'] are required."
    if kind in _MEDIA and not (content.get("link") or content.get("id")):
        return f"Param {kind} must contain either id or link."
    return None


def _phone_number_id(route: str) -> str | None:
    """``<id>`` of ``[/<version>]/<id>/messages``, else None."""
    parts = route.strip("/").split("/")
    if parts and parts[0].startswith("v") and len(parts) == 3:
        parts = parts[1:]
    if len(parts) == 2 and parts[1] == "messages" and parts[0]:
        return parts[0]
    return None


def _wa_id(to: str) -> str:
    return "".join(ch for ch in to if ch.isdigit()) or to


class WhatsAppFake:
    """The fake Cloud API. ``token``: the access token it accepts; ``phone_number_ids``: the
    business phone number ids it knows (None: any); ``latency``: seconds before answering;
    ``callbacks``: status webhooks to send (None: none)."""

    def __init__(
        self,
        *,
        token: str,
        prefix: str = "/whatsapp",
        latency: float = 0.0,
        callbacks: CallbackPlan | None = None,
        phone_number_ids: frozenset[str] | None = None,
        business_account_id: str = "102290129340398",
        display_phone_number: str = "15550783881",
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.latency = latency
        self.callbacks = callbacks
        self.faults = FaultBook()
        self.requests: list[RecordedRequest] = []
        self.sent_callbacks: list[CallbackSent] = []
        self._authorization = f"Bearer {token}"
        self._phone_number_ids = phone_number_ids
        self._business_account_id = business_account_id
        self._display_phone_number = display_phone_number
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def mount(self, provider: LocalProvider) -> None:
        provider.mount(self.prefix, self.handle)

    async def handle(self, request: FakeRequest) -> Answer:
        route = request.path[len(self.prefix) :]
        if route == "/_faults":
            return self.faults.control(request) or json_answer(405, {"error": "POST or DELETE"})
        if route == "/_requests" and request.method == "GET":
            return json_answer(200, self.requests)
        number = _phone_number_id(route)
        if request.method != "POST" or number is None:
            return _graph_error(
                400,
                100,
                "Unsupported request",
                f"Unknown path {request.path}",
                kind="GraphMethodException",
            )
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            arrived_ns=time.time_ns(),
            phone_number_id=number,
        )
        self.requests.append(record)
        try:
            answer = await self._send(request, record)
        except ResetConnection:
            record.status = 0
            raise
        record.status = answer[0]
        return answer

    async def _send(self, request: FakeRequest, record: RecordedRequest) -> Answer:
        if self.latency:
            await asyncio.sleep(self.latency)
        record.authorized = request.headers.get("authorization") == self._authorization
        if not record.authorized:
            record.error_code = 190
            return _graph_error(
                401, 190, "Invalid OAuth access token - Cannot parse access token", ""
            )
        refused = self._refused(request.body, record)
        if refused is not None:
            record.error_code = 100
            return refused
        assert record.to is not None
        fault = self.faults.take(recipient=record.to, sender=record.phone_number_id, tenant=None)
        failure_code: int | None = None
        if fault is not None:
            await self.faults.apply_transport(fault)
            faulted = _faulted(fault, record)
            if isinstance(faulted, tuple):
                return faulted
            failure_code = faulted
        return self._accept(record, failure_code)

    def _refused(self, body: bytes, record: RecordedRequest) -> Answer | None:
        """Record the body's fields; the 400 Meta would answer, if any."""
        if self._phone_number_ids is not None and record.phone_number_id not in (
            self._phone_number_ids
        ):
            return _graph_error(
                400,
                100,
                "Unsupported post request",
                f"Object with ID '{record.phone_number_id}' does not exist",
                subcode=33,
                kind="GraphMethodException",
            )
        try:
            message = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return _invalid("The request body is not valid JSON.")
        if not isinstance(message, dict):
            return _invalid("The request body must be a JSON object.")
        record.message = message
        record.to = message.get("to") if isinstance(message.get("to"), str) else None
        record.type = str(message.get("type", "text"))
        opaque = message.get("biz_opaque_callback_data")
        record.biz_opaque_callback_data = opaque if isinstance(opaque, str) else None
        problem = _problem(message)
        return _invalid(problem) if problem is not None else None

    def _accept(self, record: RecordedRequest, failure_code: int | None) -> Answer:
        assert record.to is not None and record.phone_number_id is not None
        record.wamid = f"wamid.FAKE{next(_counter):010d}{uuid.uuid4().hex[:12].upper()}"
        if self.callbacks is not None:
            task = asyncio.get_running_loop().create_task(
                self._send_statuses(self.callbacks, record, failure_code)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return json_answer(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": record.to, "wa_id": _wa_id(record.to)}],
                "messages": [{"id": record.wamid}],
            },
        )

    # -- status webhooks -----------------------------------------------------------------

    def notification(
        self, record: RecordedRequest, status: str, failure_code: int | None = None
    ) -> bytes:
        """The webhook body Meta sends for ``status`` of the message ``record`` accepted."""
        assert record.to is not None and record.wamid is not None
        entry: dict[str, Any] = {
            "id": record.wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": _wa_id(record.to),
        }
        if record.biz_opaque_callback_data is not None:
            entry["biz_opaque_callback_data"] = record.biz_opaque_callback_data
        if status == "failed" and failure_code is not None:
            entry["errors"] = [_status_error(failure_code)]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self._display_phone_number,
                "phone_number_id": record.phone_number_id,
            },
            "statuses": [entry],
        }
        return msgspec.json.encode(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": self._business_account_id,
                        "changes": [{"value": value, "field": "messages"}],
                    }
                ],
            }
        )

    async def _send_statuses(
        self, plan: CallbackPlan, record: RecordedRequest, failure_code: int | None
    ) -> None:
        for status in plan.sequence(failure_code):
            if plan.delay:
                await asyncio.sleep(plan.delay)
            await self._post_status(plan, record, status, failure_code)

    async def _post_status(
        self, plan: CallbackPlan, record: RecordedRequest, status: str, failure_code: int | None
    ) -> None:
        assert record.wamid is not None
        body = self.notification(record, status, failure_code)
        headers = {
            "content-type": "application/json",
            WHATSAPP_HEADER: whatsapp_signature(plan.app_secret, body),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            async with self._session.post(plan.url, data=body, headers=headers) as response:
                await response.read()
                sent = CallbackSent(record.wamid, status, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent = CallbackSent(record.wamid, status, 0, repr(exc))
        self.sent_callbacks.append(sent)

    async def stop(self, grace: float = 2.0) -> None:
        """Wait up to ``grace`` s for the webhooks under way, cancel the rest, close the
        client (on the loop the fake serves on)."""
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _faulted(fault: Fault, record: RecordedRequest) -> Answer | int | None:
    """The answer a fault gives, or the code of a failure to report after accepting (an
    ``int``), or None (no answer of its own: a delay only)."""
    if fault.code is not None:
        try:
            code = int(fault.code)
        except ValueError:
            return _invalid(f"fake: fault code {fault.code!r} is not a number")
        if fault.status is not None and 200 <= fault.status < 300:
            return code
        record.error_code = code
        return _coded_error(code, fault.status, fault.retry_after)
    if fault.status is not None:
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return json_answer(fault.status, {"error": f"HTTP {fault.status}"}, headers)
    return None


def _status_error(code: int) -> dict[str, Any]:
    _status, title, details = ERRORS.get(code, (400, "Unknown error", f"code {code}"))
    title = _STATUS_TITLES.get(code, title)
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": f"https://{_ERROR_CODES}/",
    }
