"""What the local provider's fakes of real providers share: the request they get, the
answer they give, and the faults an operator or a test injects.

A fake (``ops.whatsapp_fake``, ``ops.twilio_fake``, ``ops.sendgrid_fake``) is mounted on
the local provider under a path prefix (``LocalProvider.mount``) and answers requests in
its provider's own formats. Faults are rules matched against each request's recipient,
sender or tenant (or any request): the first that matches and has uses left decides the
answer. A rule's ``code`` is the provider's own error code (the fake writes that
provider's error body); ``status`` alone answers with that HTTP status;
``reset`` closes the connection without an answer; ``timeout`` holds the request
``seconds`` before answering (longer than the client's timeout, it is a timeout).
Rules are set in process (``FaultBook.add``) or over HTTP (``POST <prefix>/_faults`` with a
JSON list of rules; ``DELETE <prefix>/_faults`` clears them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

__all__ = (
    "Answer",
    "ResetConnection",
    "Fault",
    "FaultBook",
    "FakeRequest",
    "Handler",
    "json_answer",
)

Answer = tuple[int, dict[str, str], bytes]
"""(status, headers, body). A ``content-type`` header replaces the default JSON one."""


class ResetConnection(Exception):  # noqa: N818 - an instruction, not an error
    """Raised by a handler: the server aborts the connection without answering."""


class FakeRequest(msgspec.Struct, frozen=True):
    method: str
    path: str
    """Path without the query."""
    query: str
    headers: dict[str, str]
    """Lowercase names."""
    body: bytes


Handler = Callable[[FakeRequest], Awaitable[Answer]]


class Fault(msgspec.Struct, kw_only=True):
    match: str = "any"
    """``recipient``, ``sender``, ``tenant`` or ``any``."""
    value: str | None = None
    """What the matched field must equal (ignored for ``any``)."""
    code: str | None = None
    """The provider's error code (e.g. WhatsApp ``131056``, Twilio ``21211``)."""
    status: int | None = None
    """The HTTP status (with ``code``: overrides the provider's usual status for it)."""
    retry_after: float | None = None
    """Seconds for a ``Retry-After`` header (left out when None)."""
    reset: bool = False
    timeout: float | None = None
    """Seconds to hold the request before answering as usual."""
    times: int | None = None
    """How many requests it applies to (None: every one)."""


_faults_decoder = msgspec.json.Decoder(list[Fault])
_encoder = msgspec.json.Encoder()


def json_answer(status: int, body: object, headers: dict[str, str] | None = None) -> Answer:
    return status, headers or {}, _encoder.encode(body)


class FaultBook:
    """The fault rules of one fake, in the order they were added."""

    def __init__(self) -> None:
        self.rules: list[Fault] = []

    def add(self, *rules: Fault) -> None:
        self.rules.extend(rules)

    def clear(self) -> None:
        self.rules.clear()

    def take(
        self, *, recipient: str | None, sender: str | None, tenant: str | None
    ) -> Fault | None:
        """The first rule matching this request, one use taken; None when none does."""
        fields = {"recipient": recipient, "sender": sender, "tenant": tenant}
        for rule in self.rules:
            if rule.times is not None and rule.times <= 0:
                continue
            if rule.match != "any" and (rule.value is None or fields.get(rule.match) != rule.value):
                continue
            if rule.times is not None:
                rule.times -= 1
            return rule
        return None

    async def apply_transport(self, fault: Fault) -> None:
        """The fault's transport part: hold the request, or reset the connection."""
        if fault.timeout:
            await asyncio.sleep(fault.timeout)
        if fault.reset:
            raise ResetConnection

    def control(self, request: FakeRequest) -> Answer | None:
        """Answer ``POST/DELETE .../_faults`` (None: not a control request)."""
        if not request.path.endswith("/_faults"):
            return None
        if request.method == "DELETE":
            self.clear()
            return json_answer(200, {"rules": 0})
        if request.method != "POST":
            return json_answer(405, {"error": "POST or DELETE"})
        try:
            rules = _faults_decoder.decode(request.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return json_answer(400, {"error": f"faults: {exc}"})
        self.add(*rules)
        return json_answer(200, {"rules": len(self.rules)})
