"""What the end-to-end channel tests share: the three provider fakes (WhatsApp Cloud API,
Twilio, SendGrid) on one local provider, a real SMTP server (aiosmtpd) with AUTH, the
settings that point a ``RELAYQ_DELIVERER=channels`` worker at them with test credentials,
a meter of requests in flight at a fake, and readers of what a worker left in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.message
import email.policy
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from relayq.ops.fake_http import Answer, FakeRequest, Handler
from relayq.ops.local_provider import ProviderThread
from relayq.ops.sendgrid_fake import PREFIX as SENDGRID_PREFIX
from relayq.ops.sendgrid_fake import SendGridFake
from relayq.ops.twilio_fake import CallbackPlan as TwilioPlan
from relayq.ops.twilio_fake import TwilioFake
from relayq.ops.whatsapp_fake import CallbackPlan as WhatsAppPlan
from relayq.ops.whatsapp_fake import WhatsAppFake
from relayq.streams.codec import decode_entry
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeRecord, decode_record
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings
from tests.support import WorkerPool, WorkerProcess, dead_letters

__all__ = (
    "CREDENTIALS",
    "EMAIL_FROM",
    "OTHER_PHONE_ID",
    "PHONE_ID",
    "SMTP_PASSWORD",
    "SMTP_USER",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM",
    "TWILIO_SID",
    "WHATSAPP_TOKEN",
    "SENDGRID_KEY",
    "Fakes",
    "Inbox",
    "InFlightMeter",
    "channel_settings",
    "dead_lettered",
    "most_in_any_second",
    "record_of",
    "records_of",
    "running_fakes",
    "smtp_inbox",
    "span_hook",
    "start_channel_worker",
)

WHATSAPP_TOKEN = "EAAGe2eWhatsAppToken0x5f1cNeverShown"
TWILIO_AUTH_TOKEN = "e2eTwilioAuthToken9d3aNeverShown"
SENDGRID_KEY = "SG.e2eSendGridKey77b2NeverShown"
SMTP_PASSWORD = "e2eSmtpPassword-c4e8-NeverShown"
CREDENTIALS = (WHATSAPP_TOKEN, TWILIO_AUTH_TOKEN, SENDGRID_KEY, SMTP_PASSWORD)
"""Every secret a channel worker holds: none may appear in a log, Redis or a span."""

PHONE_ID = "106540352242922"
"""The default WhatsApp sender (RELAYQ_WHATSAPP_PHONE_NUMBER_ID)."""
OTHER_PHONE_ID = "106540352242923"
TWILIO_SID = "AC" + "e2e0" * 8
TWILIO_FROM = "+15005550006"
EMAIL_FROM = "shop@example.com"
SMTP_USER = "relayq"


# -- the provider fakes -------------------------------------------------------------------


@dataclasses.dataclass
class Fakes:
    """The three HTTP providers' fakes, mounted on one local provider thread."""

    thread: ProviderThread
    whatsapp: WhatsAppFake
    twilio: TwilioFake
    sendgrid: SendGridFake

    def base_url(self, prefix: str) -> str:
        return self.thread.provider.base_url(prefix)

    def stop_callbacks(self) -> None:
        """Stop the fakes' status callbacks (on the provider's loop) before it stops."""
        loop = self.thread._loop  # ProviderThread offers no public way to run a coroutine
        asyncio.run_coroutine_threadsafe(self.whatsapp.stop(grace=0.5), loop).result(10)
        self.twilio.close()


@contextlib.contextmanager
def running_fakes(
    *,
    latency: float = 0.0,
    whatsapp_callbacks: WhatsAppPlan | None = None,
    twilio_plan: TwilioPlan | None = None,
    meter: InFlightMeter | None = None,
) -> Iterator[Fakes]:
    """The fakes on a started ProviderThread (mounted before it starts); with ``meter``,
    every send request's time in the fakes is measured."""
    fakes = Fakes(
        thread=ProviderThread(),
        whatsapp=WhatsAppFake(token=WHATSAPP_TOKEN, latency=latency, callbacks=whatsapp_callbacks),
        twilio=TwilioFake(
            account_sid=TWILIO_SID,
            auth_token=TWILIO_AUTH_TOKEN,
            latency=latency,
            callback_plan=twilio_plan,
        ),
        sendgrid=SendGridFake(SENDGRID_KEY, latency=latency),
    )
    provider = fakes.thread.provider
    fakes.whatsapp.mount(provider)
    fakes.twilio.mount(provider)
    fakes.sendgrid.mount(provider)
    if meter is not None:
        provider.mount("/whatsapp", meter.wrap("whatsapp", fakes.whatsapp.handle))
        provider.mount(SENDGRID_PREFIX, meter.wrap("email", fakes.sendgrid.handle))
    with fakes.thread:
        try:
            yield fakes
        finally:
            fakes.stop_callbacks()


class InFlightMeter:
    """Wraps fakes' handlers: when each send request arrived and was answered, by channel."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[int, int]]] = {}

    def wrap(self, channel: str, handler: Handler) -> Handler:
        spans = self.spans.setdefault(channel, [])

        async def metered(request: FakeRequest) -> Answer:
            if request.method != "POST" or request.path.endswith("/_faults"):
                return await handler(request)
            arrived = time.monotonic_ns()
            try:
                return await handler(request)
            finally:
                spans.append((arrived, time.monotonic_ns()))

        return metered

    def arrivals(self, channel: str) -> list[int]:
        return [arrived for arrived, _ in self.spans.get(channel, [])]

    def most_in_flight(self, channel: str) -> int:
        """The most requests of ``channel`` the fake held at once."""
        edges = sorted(
            edge
            for arrived, answered in self.spans.get(channel, [])
            for edge in ((arrived, 1), (answered, -1))
        )  # at one instant an answer (-1) sorts before an arrival (+1)
        most = current = 0
        for _, step in edges:
            current += step
            most = max(most, current)
        return most


def most_in_any_second(times_ns: Iterable[int]) -> int:
    """The most of ``times_ns`` within any one second."""
    times = sorted(times_ns)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1_000_000_000:
            start += 1
        most = max(most, end - start + 1)
    return most


# -- a real SMTP server -------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping what it accepts; ``rcpt_replies[address]``: replies to
    give that recipient first, one per transaction (then it is accepted); ``refused``:
    the recipients so refused, in order."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpt_replies: dict[str, list[str]] = {}
        self.refused: list[str] = []
        """Recipients refused at RCPT, once per refusal."""
        self.authenticated: list[bool] = []

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        replies = self.rcpt_replies.get(address)
        if replies:
            self.refused.append(address)
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        self.authenticated.append(bool(session.authenticated))
        return "250 2.0.0 accepted"

    def messages(self) -> list[email.message.EmailMessage]:
        parsed = []
        for envelope in list(self.envelopes):
            message = email.message_from_bytes(
                envelope.original_content or b"", policy=email.policy.default
            )
            assert isinstance(message, email.message.EmailMessage)
            parsed.append(message)
        return parsed

    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages()]


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    """An aiosmtpd server on 127.0.0.1 that takes AUTH (user/password) in plain text (a
    test server only); yields its inbox and port."""
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


# -- workers ------------------------------------------------------------------------------


def channel_settings(
    settings: Settings, fakes: Fakes, channels: str, smtp_port: int | None = None, **changes: Any
) -> Settings:
    """``settings`` delivering ``channels`` (RELAYQ_CHANNELS) through the fakes, with every
    provider's test credentials (``smtp_port``: the SMTP server's, else no SMTP)."""
    smtp_url = f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}" if smtp_port else None
    return settings.replace(
        channels=channels,
        whatsapp_api_url=fakes.base_url("/whatsapp/v21.0"),
        whatsapp_token=WHATSAPP_TOKEN,
        whatsapp_phone_number_id=PHONE_ID,
        twilio_api_url=fakes.base_url("/twilio"),
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_AUTH_TOKEN,
        twilio_from=TWILIO_FROM,
        sendgrid_api_url=fakes.base_url(SENDGRID_PREFIX),
        sendgrid_api_key=SENDGRID_KEY,
        email_from=EMAIL_FROM,
        smtp_url=smtp_url,
        **changes,
    )


def start_channel_worker(
    workers: WorkerPool,
    settings: Settings,
    *,
    burst: bool = False,
    env: Mapping[str, str] | None = None,
) -> WorkerProcess:
    """A ``relayq worker`` with ``RELAYQ_DELIVERER=channels`` on ``settings`` (``env``:
    more of its environment)."""
    return workers.start(
        "http://127.0.0.1:9/unused", burst=burst, settings=settings,
        RELAYQ_DELIVERER="channels", **(env or {}),
    )  # fmt: skip


_SPAN_HOOK = """\
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

_out = open(os.environ["TEST_SPANS_FILE"], "a", encoding="utf-8")
_provider = TracerProvider()
_provider.add_span_processor(
    SimpleSpanProcessor(ConsoleSpanExporter(out=_out, formatter=lambda s: s.to_json(None) + "\\n"))
)
trace.set_tracer_provider(_provider)
"""


def span_hook(directory: Path) -> dict[str, str]:
    """Environment for a worker that exports every span it makes, as JSON lines, to
    ``directory/spans.jsonl``: a ``sitecustomize`` installing an SDK TracerProvider."""
    hook = directory / "span-hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(_SPAN_HOOK)
    return {"PYTHONPATH": str(hook), "TEST_SPANS_FILE": str(directory / "spans.jsonl")}


# -- what Redis holds ---------------------------------------------------------------------


def record_of(client: redis.Redis, keys: Keys, message_id: str) -> OutcomeRecord | None:
    """The message's outcome record (whichever partition holds it), or None."""
    for partition in range(keys.partitions):
        blob = client.hget(keys.outcomes(partition), message_id)
        if isinstance(blob, bytes):
            return decode_record(blob)
    return None


def records_of(
    client: redis.Redis, keys: Keys, message_ids: Iterable[str]
) -> dict[str, OutcomeRecord | None]:
    return {message_id: record_of(client, keys, message_id) for message_id in message_ids}


def dead_lettered(client: redis.Redis, keys: Keys) -> dict[str, dict[str, bytes]]:
    """Message id -> its dead-letter entry's fields."""
    return {
        decode_entry({b"m": letter["entry:m"]}).id: letter for letter in dead_letters(client, keys)
    }
