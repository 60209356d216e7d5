"""The WhatsApp, Twilio and SendGrid fakes bundled on one local provider.

:class:`LocalFakes` mounts the three fakes (``ops.whatsapp_fake``, ``ops.twilio_fake``,
``ops.sendgrid_fake``) on a :class:`~relayq.ops.local_provider.LocalProvider`: WhatsApp
under ``/whatsapp``, Twilio under ``/twilio``, SendGrid under ``/sendgrid``, with the local
test credentials of :class:`FakeCredentials`. ``LocalProvider(fakes=True)`` builds one.
``fake_environment`` gives the ``RELAYQ_*`` variables that point a worker at them.

The provider's ``latency``, ``fail_rate`` and ``throttle_rate`` apply to the fakes too,
each in its provider's own terms (see :class:`LocalFakes`). Under ``/local``:
``POST /local/twilio/status`` takes the Twilio fake's status callbacks (checking their
signature) and ``GET /local/stats`` counts what the fakes answered. The provider's
``stop()`` stops the fakes (``LocalFakes.stop``: its ``/local`` handler is mounted).
"""

from __future__ import annotations

import random
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from relayq.ops.fake_http import Answer, FakeRequest, Fault, FaultBook, json_answer
from relayq.ops.local_provider import LocalProvider
from relayq.ops.receipt_signatures import TWILIO_HEADER, verify_twilio
from relayq.ops.sendgrid_fake import SendGridFake
from relayq.ops.twilio_fake import CallbackPlan, TwilioFake
from relayq.ops.whatsapp_fake import WhatsAppFake

__all__ = (
    "FAKE_CHANNELS",
    "LOCAL_CREDENTIALS",
    "TWILIO_STATUS_PATH",
    "FakeCredentials",
    "LocalFakes",
    "fake_environment",
)


class FakeCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """The credentials the local fakes accept: local test values, not secrets (``relayq
    provider`` prints them)."""

    whatsapp_token: str = "local-whatsapp-token"
    whatsapp_phone_number_id: str = "100000000000001"
    twilio_account_sid: str = "AC" + "0" * 31 + "1"
    twilio_auth_token: str = "local-twilio-auth-token"
    twilio_from: str = "+15005550006"
    sendgrid_api_key: str = "SG.local-test-key"
    email_from: str = "relayq-demo@example.com"


LOCAL_CREDENTIALS = FakeCredentials()
FAKE_CHANNELS = "whatsapp=whatsapp,sms=twilio,email=sendgrid"
"""``RELAYQ_CHANNELS`` for the fakes (the default map would leave email out without SMTP)."""
TWILIO_STATUS_PATH = "/local/twilio/status"
"""Where the local provider takes the Twilio fake's status callbacks."""


def fake_environment(
    base_url: str, credentials: FakeCredentials = LOCAL_CREDENTIALS
) -> dict[str, str]:
    """The ``RELAYQ_*`` variables that point a worker's adapters at the fakes of the local
    provider at ``base_url`` (``http://127.0.0.1:<port>``)."""
    c = credentials
    return {
        "RELAYQ_WHATSAPP_API_URL": f"{base_url}/whatsapp",
        "RELAYQ_WHATSAPP_TOKEN": c.whatsapp_token,
        "RELAYQ_WHATSAPP_PHONE_NUMBER_ID": c.whatsapp_phone_number_id,
        "RELAYQ_TWILIO_API_URL": f"{base_url}/twilio",
        "RELAYQ_TWILIO_ACCOUNT_SID": c.twilio_account_sid,
        "RELAYQ_TWILIO_AUTH_TOKEN": c.twilio_auth_token,
        "RELAYQ_TWILIO_FROM": c.twilio_from,
        "RELAYQ_TWILIO_STATUS_CALLBACK": f"{base_url}{TWILIO_STATUS_PATH}",
        "RELAYQ_SENDGRID_API_URL": f"{base_url}/sendgrid",
        "RELAYQ_SENDGRID_API_KEY": c.sendgrid_api_key,
        "RELAYQ_EMAIL_FROM": c.email_from,
    }


class _Fake(Protocol):
    faults: FaultBook

    async def handle(self, request: FakeRequest) -> Answer: ...


class _RatedFake:
    """A fake behind the provider's fail and throttle rates: a send the dice pick gets a
    one-use fault rule at the head of the fake's rules (the fake answers it in its own
    format). Counts the sends and what they were answered."""

    def __init__(
        self, fake: _Fake, roll: Callable[[], str | None], faults: dict[str, Fault]
    ) -> None:
        self.fake = fake
        self._roll = roll
        self._faults = faults
        self.counts: Counter[str] = Counter()

    async def handle(self, request: FakeRequest) -> Answer:
        if request.method != "POST" or request.path.endswith("/_faults"):
            return await self.fake.handle(request)
        picked = self._roll()
        if picked is not None:
            self._inject(picked)
        answer = await self.fake.handle(request)
        self.counts["requests"] += 1
        self.counts["accepted"] += 200 <= answer[0] < 300
        return answer

    def _inject(self, picked: str) -> None:
        rules = self.fake.faults.rules
        rules[:] = [rule for rule in rules if rule.times != 0]  # drop the spent ones
        rules.insert(0, msgspec.structs.replace(self._faults[picked], times=1))
        self.counts[picked] += 1


class LocalFakes:
    """The WhatsApp, Twilio and SendGrid fakes on one local provider, with its ``latency``,
    and its ``fail_rate`` and ``throttle_rate`` applied as each provider would answer:

    - fail: WhatsApp code 131000 (HTTP 500), Twilio and SendGrid HTTP 503 (retried);
    - throttle: WhatsApp 130429 (throughput, HTTP 400), Twilio 63018 (429), SendGrid 429
      with ``X-RateLimit-Reset``; each with the provider's ``retry_after``.
    """

    def __init__(
        self, provider: LocalProvider, credentials: FakeCredentials = LOCAL_CREDENTIALS
    ) -> None:
        c = credentials
        self.credentials = c
        self.whatsapp = WhatsAppFake(
            token=c.whatsapp_token, phone_number_ids=frozenset({c.whatsapp_phone_number_id})
        )
        self.twilio = TwilioFake(account_sid=c.twilio_account_sid, auth_token=c.twilio_auth_token)
        self.sendgrid = SendGridFake(c.sendgrid_api_key)
        if not provider.behaviour.status_callbacks:
            self.twilio.callback_plan = CallbackPlan(statuses=[])
        for fake in (self.whatsapp, self.twilio, self.sendgrid):
            fake.latency = provider.behaviour.latency
        self.twilio_callbacks: Counter[str] = Counter()
        """The Twilio status callbacks taken at ``/local/twilio/status``, by status
        (``bad_signature``: refused)."""
        self._provider = provider
        self._random = random.Random(provider.behaviour.seed)
        self.rated = self._mount_rated(provider, provider.behaviour.retry_after)
        provider.mount("/local", self._local)

    def _mount_rated(self, provider: LocalProvider, wait: float) -> dict[str, _RatedFake]:
        plans: dict[str, tuple[_Fake, Fault, Fault]] = {
            "whatsapp": (
                self.whatsapp,
                Fault(code="131000"),
                Fault(code="130429", retry_after=wait),
            ),
            "twilio": (self.twilio, Fault(status=503), Fault(code="63018", retry_after=wait)),
            "sendgrid": (self.sendgrid, Fault(status=503), Fault(status=429, retry_after=wait)),
        }
        rated = {}
        for name, (fake, fail, throttle) in plans.items():
            rated[name] = _RatedFake(fake, self._roll, {"failed": fail, "throttled": throttle})
            provider.mount(f"/{name}", rated[name].handle)
        return rated

    def environment(self) -> dict[str, str]:
        """``fake_environment`` of this provider (started)."""
        return fake_environment(self._provider.base_url(), self.credentials)

    def stats(self) -> dict[str, Any]:
        """Per fake: sends, accepted (2xx), failed and throttled (injected by the rates);
        and the Twilio status callbacks taken."""
        counts: dict[str, Any] = {name: dict(r.counts) for name, r in self.rated.items()}
        counts["twilio_callbacks"] = dict(self.twilio_callbacks)
        return counts

    async def stop(self) -> None:
        """Stop the fakes that send callbacks (WhatsApp's and Twilio's; SendGrid sends none).
        The provider calls it from its ``stop()``."""
        await self.whatsapp.stop()
        await self.twilio.stop()

    def _roll(self) -> str | None:
        behaviour, roll = self._provider.behaviour, self._random.random()
        if roll < behaviour.throttle_rate:
            return "throttled"
        if roll < behaviour.throttle_rate + behaviour.fail_rate:
            return "failed"
        return None

    async def _local(self, request: FakeRequest) -> Answer:
        if request.method == "GET" and request.path == "/local/stats":
            return json_answer(200, self.stats())
        if request.method == "POST" and request.path == TWILIO_STATUS_PATH:
            return self._twilio_status(request)
        return json_answer(404, {"error": "not found"})

    def _twilio_status(self, request: FakeRequest) -> Answer:
        """A Twilio status callback: counted by status when its signature is right."""
        url = self._provider.base_url(request.path)
        if request.query:
            url += f"?{request.query}"
        params = dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace")))
        signature = request.headers.get(TWILIO_HEADER.lower())
        if not verify_twilio(self.credentials.twilio_auth_token, url, params, signature):
            self.twilio_callbacks["bad_signature"] += 1
            return json_answer(403, {"error": "bad signature"})
        self.twilio_callbacks[params.get("MessageStatus", "?")] += 1
        return 200, {"content-type": "text/xml"}, b"<Response/>"
