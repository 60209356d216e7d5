"""A local fake of Twilio's Messages API, in Twilio's own request and response formats.

Mounted on the local provider under a prefix (``TwilioFake().mount(provider)``, default
``/twilio``), so its base URL (what ``RELAYQ_TWILIO_API_URL`` or an official client is
pointed at) is ``provider.base_url("/twilio")``. It speaks, as documented:

- ``POST {prefix}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP basic
  auth ``AccountSid:AuthToken`` (a wrong pair or another account's URL: 401, code 20003)
  (twilio.com/docs/messaging/api/message-resource, /docs/api/errors/20003);
- validation like the real API: no ``To`` 21604, no ``From``/``MessagingServiceSid`` 21603,
  no ``Body``/``MediaUrl`` 21602, a ``To`` that is not E.164 21211 (all HTTP 400);
- success: 201 and the Message resource (``sid`` ``SM`` + 32 hex, ``status`` ``queued``, or
  ``accepted`` through a Messaging Service, ``date_created`` in RFC 2822, ``uri``, ...);
- errors as Twilio's body ``{"code", "message", "more_info", "status"}``
  (twilio.com/docs/api/errors/400);
- ``GET {prefix}/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`` fetches a message.

Status callbacks: a request with ``StatusCallback`` gets, after the 201, form-encoded POSTs
to that URL (``MessageSid``, ``SmsSid``, ``MessageStatus``, ``SmsStatus``, ``AccountSid``,
``From``, ``To``, ``ApiVersion``, and ``ErrorCode`` for failed/undelivered) signed with
``X-Twilio-Signature`` over the exact URL and the params. Twilio sends none for the
initial ``queued`` status, so the default sequence is sent, delivered
(twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks); a
:class:`CallbackPlan` (per recipient, or the default) changes the sequence, shuffles it
(out of order) or repeats statuses (duplicates). ``stop()`` (or ``close()`` from another
thread) cancels the callbacks still to come.

Test controls: ``latency`` (seconds before each answer), ``faults`` (``ops.fake_http``:
``POST/DELETE {prefix}/_faults``; rules match ``recipient`` = To, ``sender`` = From or
MessagingServiceSid; a rule's ``code`` answers with that Twilio code's documented status),
``requests`` (every request, decoded; ``GET {prefix}/_requests``), ``callbacks`` (every
callback sent, with the receiver's answer). The fake never imports relayq's adapter.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import email.utils
import hmac
import random
import re
import urllib.parse
import uuid
from typing import Any

import aiohttp
import msgspec

from relayq.ops.fake_http import Answer, FakeRequest, Fault, FaultBook, json_answer
from relayq.ops.local_provider import LocalProvider
from relayq.ops.receipt_signatures import TWILIO_HEADER, twilio_signature

__all__ = ("Callback", "CallbackPlan", "TwilioFake", "TwilioRequest")

API_VERSION = "2010-04-01"
_MESSAGES = re.compile(r"/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json")
_MESSAGE = re.compile(r"/2010-04-01/Accounts/(?P<account>AC\w+)/Messages/(?P<sid>\w+)\.json")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_MORE_INFO = "https://www.twilio.com/docs/errors/"

_ERRORS: dict[int, tuple[int, str]] = {
    # code: (HTTP status, Twilio's message), from twilio.com/docs/api/errors/<code>
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21408: (400, "Permission to send an SMS has not been enabled for the region {to}"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable number."),
    21608: (400, "The number {to} is unverified. Trial accounts can only send to verified."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number: {to}, is not currently reachable via SMS."),
    21614: (400, "'To' number {to} is not a valid mobile number"),
    63016: (400, "Failed to send freeform message because you are outside the allowed window."),
    63017: (429, "Rate limit exceeded"),
    63018: (429, "Rate limit exceeded for Channel"),
}
"""The codes a fault can name with their usual HTTP status; others answer 400."""

_DEFAULT_FROM_OF_SERVICE = "+15005550006"
"""The From of callbacks for a Messaging Service send (the service would pick one)."""


class CallbackPlan(msgspec.Struct, kw_only=True):
    """Which status callbacks a sent message gets."""

    statuses: list[str] = msgspec.field(default_factory=lambda: ["sent", "delivered"])
    error_code: int | None = None
    """``ErrorCode`` of ``failed``/``undelivered`` callbacks (e.g. 30003, 63016)."""
    delay: float = 0.01
    """Seconds before each callback."""
    shuffle: bool = False
    """Send the statuses in a random order (receipts arrive out of order)."""
    duplicates: int = 0
    """Send each status this many extra times."""
    seed: int | None = None


class TwilioRequest(msgspec.Struct, frozen=True):
    """One request the fake answered, with its form decoded."""

    method: str
    path: str
    form: dict[str, list[str]]
    status: int
    """The HTTP status it was answered with (0: the connection was reset)."""
    sid: str | None = None
    """The Message SID it created."""

    def field(self, name: str) -> str | None:
        """The first value of form field ``name`` (None when absent)."""
        values = self.form.get(name)
        return values[0] if values else None


class Callback(msgspec.Struct, frozen=True):
    """One status callback the fake sent, and the receiver's answer (0: unreachable)."""

    url: str
    params: dict[str, str]
    signature: str
    status: int


class TwilioFake:
    """Twilio's Messages API for one account (``account_sid``, ``auth_token``)."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "fake-auth-token",
        latency: float = 0.0,
        callback_plan: CallbackPlan | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency = latency
        self.callback_plan = callback_plan or CallbackPlan()
        self.callback_plans: dict[str, CallbackPlan] = {}
        """To -> its plan (instead of ``callback_plan``)."""
        self.faults = FaultBook()
        self.requests: list[TwilioRequest] = []
        self.callbacks: list[Callback] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.prefix = "/twilio"
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def mount(self, provider: LocalProvider, prefix: str = "/twilio") -> None:
        """Answer the provider's requests under ``prefix``."""
        self.prefix = prefix.rstrip("/")
        provider.mount(self.prefix, self.handle)

    async def handle(self, request: FakeRequest) -> Answer:
        self._loop = asyncio.get_running_loop()
        path = request.path.removeprefix(self.prefix)
        control = self._control(request, path)
        if control is not None:
            return control
        form = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"))
        answer, sid = await self._route(request, path, form)
        self.requests.append(TwilioRequest(request.method, request.path, form, answer[0], sid))
        return answer

    def _control(self, request: FakeRequest, path: str) -> Answer | None:
        if path == "/_requests" and request.method == "GET":
            return json_answer(200, self.requests)
        if path == "/_faults":
            return self.faults.control(request)
        return None

    async def _route(
        self, request: FakeRequest, path: str, form: dict[str, list[str]]
    ) -> tuple[Answer, str | None]:
        create = _MESSAGES.fullmatch(path) if request.method == "POST" else None
        fetch = _MESSAGE.fullmatch(path) if request.method == "GET" else None
        match = create or fetch
        if match is None:
            return _coded(20404), None
        if not self._authorized(request.headers.get("authorization"), match["account"]):
            return _coded(20003), None
        if self.latency:
            await asyncio.sleep(self.latency)
        if fetch is not None:
            return self._fetch(fetch["sid"]), None
        return await self._create(form)

    def _authorized(self, header: str | None, account: str) -> bool:
        """Basic auth with this account's SID and token, on this account's URL."""
        scheme, _, encoded = (header or "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            scheme.lower() == "basic"
            and hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
            and account == self.account_sid
        )

    def _fetch(self, sid: str) -> Answer:
        resource = self.messages.get(sid)
        if resource is None:
            return _coded(20404)
        return json_answer(200, resource)

    async def _create(self, form: dict[str, list[str]]) -> tuple[Answer, str | None]:
        to = _first(form, "To")
        sender = _first(form, "From") or _first(form, "MessagingServiceSid")
        fault = self.faults.take(recipient=to, sender=sender, tenant=None)
        if fault is not None:
            await self.faults.apply_transport(fault)
            answer = _fault_answer(fault, to or "")
            if answer is not None:
                return answer, None
        invalid = _validate(form)
        if invalid is not None:
            return invalid, None
        resource = self._resource(form)
        self.messages[resource["sid"]] = resource
        self._schedule_callbacks(form, resource)
        return json_answer(201, resource), resource["sid"]

    def _resource(self, form: dict[str, list[str]]) -> dict[str, Any]:
        """The Message resource Twilio answers a create with (the documented fields)."""
        sid = "SM" + uuid.uuid4().hex
        now = email.utils.format_datetime(datetime.datetime.now(datetime.UTC))
        service = _first(form, "MessagingServiceSid")
        body = _first(form, "Body") or ""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": _first(form, "From"),
            "messaging_service_sid": service,
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": "0" if service else str(_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": _first(form, "To"),
            "uri": f"{uri}.json",
        }

    # -- status callbacks ---------------------------------------------------------------

    def _schedule_callbacks(self, form: dict[str, list[str]], resource: dict[str, Any]) -> None:
        url = _first(form, "StatusCallback")
        if not url:
            return
        plan = self.callback_plans.get(resource["to"], self.callback_plan)
        task = asyncio.create_task(self._send_callbacks(url, plan, resource))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_callbacks(self, url: str, plan: CallbackPlan, resource: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as session:
            for status in _sequence(plan):
                await asyncio.sleep(plan.delay)
                params = self._callback_params(resource, status, plan.error_code)
                await self._post_callback(session, url, params)

    def _callback_params(
        self, resource: dict[str, Any], status: str, error_code: int | None
    ) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": resource["from"] or _DEFAULT_FROM_OF_SERVICE,
            "MessageSid": resource["sid"],
            "MessageStatus": status,
            "SmsSid": resource["sid"],
            "SmsStatus": status,
            "To": resource["to"],
        }
        if resource["messaging_service_sid"]:
            params["MessagingServiceSid"] = resource["messaging_service_sid"]
        if status in ("failed", "undelivered") and error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    async def _post_callback(
        self, session: aiohttp.ClientSession, url: str, params: dict[str, str]
    ) -> None:
        signature = twilio_signature(self.auth_token, url, params)
        try:
            async with session.post(url, data=params, headers={TWILIO_HEADER: signature}) as r:
                await r.read()
                status = r.status
        except aiohttp.ClientError:
            status = 0
        self.callbacks.append(Callback(url, params, signature, status))

    async def stop(self) -> None:
        """Cancel the status callbacks still to come (on the provider's loop)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self, timeout: float = 10.0) -> None:
        """``stop()`` from another thread (e.g. a test beside a ``ProviderThread``)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _validate(form: dict[str, list[str]]) -> Answer | None:
    """The 400 Twilio answers an incomplete or invalid create with; None when valid."""
    to = _first(form, "To")
    if not to:
        return _coded(21604)
    if not (_first(form, "From") or _first(form, "MessagingServiceSid")):
        return _coded(21603)
    if not (_first(form, "Body") or form.get("MediaUrl") or _first(form, "ContentSid")):
        return _coded(21602)
    if not _E164.fullmatch(to.removeprefix("whatsapp:")):
        return _coded(21211, to=to)
    return None


def _coded(code: int, *, status: int | None = None, to: str = "") -> Answer:
    usual, message = _ERRORS.get(code, (400, f"Error {code}"))
    return _error(status or usual, code, message.replace("{to}", to))


def _fault_answer(fault: Fault, to: str) -> Answer | None:
    """The answer a fault rule decides (None: it only delayed or nothing more)."""
    retry = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    if fault.code is not None:
        status, _, body = _coded(int(fault.code), status=fault.status, to=to)
        return status, retry, body
    if fault.status is not None:
        code = 20429 if fault.status == 429 else None
        return _error(fault.status, code, f"HTTP {fault.status}", retry)
    return None


def _error(
    status: int, code: int | None, message: str, headers: dict[str, str] | None = None
) -> Answer:
    """Twilio's error body (``code`` and ``more_info`` left out when there is no code)."""
    body: dict[str, Any] = {"code": code, "message": message, "more_info": None, "status": status}
    if code is None:
        del body["code"], body["more_info"]
    else:
        body["more_info"] = f"{_MORE_INFO}{code}"
    return json_answer(status, body, headers)


def _segments(body: str) -> int:
    """SMS segments of a GSM body: 160 characters in one, 153 per part beyond."""
    return 1 if len(body) <= 160 else -(-len(body) // 153)


def _sequence(plan: CallbackPlan) -> list[str]:
    statuses = [status for status in plan.statuses for _ in range(1 + plan.duplicates)]
    if plan.shuffle:
        random.Random(plan.seed).shuffle(statuses)
    return statuses
