"""The SMTP adapter against a real SMTP server (aiosmtpd) on 127.0.0.1: the email it
builds (Message-ID, X-Relayq-Id, text and html), STARTTLS with AUTH and implicit TLS,
what each reply becomes (421 throttles the channel, 4xx retry, 5xx permanent, 535 pauses
the channel), the send fence just before the message's bytes, and no password in any
error or log."""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import itertools
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from relayq.consumers.adapters.smtp_mail import SmtpAdapter, SmtpServer, parse_smtp_url
from relayq.streams.deliverer import send_fence
from relayq.streams.errors import (
    ChannelDownError,
    ConfigurationError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SendFencedError,
    ThrottledError,
    ThrottleScope,
)
from relayq.streams.message import Message
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings

USER, PASSWORD = "relayq", "smtp-pa55word-never-shown"
SENDER = "shop@example.com"
_ids = itertools.count(1)


def email_message(
    recipient: str = "ann@example.com", *, sender: str | None = None, **payload: Any
) -> Message:
    """A message whose payload is an email (subject and text unless given)."""
    body = {"subject": "Your order", "text": "It ships today.", **payload}
    return Message(
        id=f"01HZSMTP{next(_ids):018d}",
        tenant="acme",
        conversation="order-1",
        recipient=recipient,
        priority="normal",
        payload=msgspec.json.encode({k: v for k, v in body.items() if v is not None}),
        created_ms=1_700_000_000_000,
        sender=sender,
    )


RCPT_REPLIES = {
    "nobody@example.com": "550 5.1.1 mailbox unavailable",
    "busy@example.com": "451 4.3.0 local error, try again later",
    "slow@example.com": "421 4.7.0 too many messages, slow down",
}
"""Recipients the test server answers with a set reply."""


class Inbox:
    """An aiosmtpd handler: keeps what it accepts; some recipients get a set reply."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpts = 0
        self.authenticated: list[bool] = []
        self.data_reply = "250 2.0.0 accepted"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.rcpts += 1
        if address in RCPT_REPLIES:
            return RCPT_REPLIES[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
            self.authenticated.append(bool(session.authenticated))
        return self.data_reply

    def received(self) -> email.message.EmailMessage:
        """The one message accepted, parsed."""
        assert len(self.envelopes) == 1, self.envelopes
        content = self.envelopes[0].original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_server(inbox: Inbox, **options: Any) -> Iterator[int]:
    """An aiosmtpd server on 127.0.0.1 (its own thread); yields its port."""
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert, key)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def plain_adapter(port: int, **options: Any) -> SmtpAdapter:
    """An adapter for ``smtp://127.0.0.1:port`` (no auth)."""
    return SmtpAdapter(
        parse_smtp_url(f"smtp://127.0.0.1:{port}"), email_from=SENDER, timeout=3, **options
    )


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def plain(inbox: Inbox) -> AsyncIterator[SmtpAdapter]:
    with smtp_server(inbox) as port:
        adapter = plain_adapter(port)
        yield adapter
        await adapter.aclose()


async def test_delivers_the_email_with_its_message_id_and_relayq_id(
    plain: SmtpAdapter, inbox: Inbox
) -> None:
    message = email_message(
        html="<p>It ships <b>today</b>.</p>", reply_to="Help <help@example.com>"
    )
    result = await plain.deliver(message)

    assert result.provider_message_id == f"<{message.id}@relayq>"
    envelope = inbox.envelopes[0]
    assert (envelope.mail_from, envelope.rcpt_tos) == (SENDER, ["ann@example.com"])
    received = inbox.received()
    assert received["Message-ID"] == f"<{message.id}@relayq>"
    assert received["X-Relayq-Id"] == message.id
    assert (received["From"], received["To"]) == (SENDER, "ann@example.com")
    assert received["Subject"] == "Your order"
    assert received["Reply-To"] == "Help <help@example.com>"
    text, html = received.get_body(("plain",)), received.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().strip() == "It ships today."
    assert html.get_content().strip() == "<p>It ships <b>today</b>.</p>"


async def test_the_messages_sender_is_the_from_and_lines_of_a_dot_survive(
    plain: SmtpAdapter, inbox: Inbox
) -> None:
    message = email_message(
        sender="Ann's Shop <ann-shop@example.com>", text="line one\n.\n..two dots\nend"
    )
    await plain.deliver(message)

    assert inbox.envelopes[0].mail_from == "ann-shop@example.com"
    received = inbox.received()
    assert received["From"] == "Ann's Shop <ann-shop@example.com>"
    body = received.get_body(("plain",))
    assert body is not None
    assert body.get_content().splitlines() == ["line one", ".", "..two dots", "end"]


async def test_html_only_and_non_ascii_text(plain: SmtpAdapter, inbox: Inbox) -> None:
    await plain.deliver(email_message(subject="Grüße ✓", text=None, html="<p>Olá, ça va?</p>"))

    received = inbox.received()
    assert received["Subject"] == "Grüße ✓"
    assert received.get_content_type() == "text/html"
    assert received.get_content().strip() == "<p>Olá, ça va?</p>"


async def test_starttls_with_auth(inbox: Inbox, certificate: tuple[Path, Path]) -> None:
    options = {"tls_context": server_tls(certificate), "require_starttls": True}
    with smtp_server(inbox, authenticator=_authenticate, auth_required=True, **options) as port:
        adapter = SmtpAdapter(
            parse_smtp_url(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}"),
            email_from=SENDER,
            timeout=3,
            tls_context=client_tls(certificate),
        )
        message = email_message()
        result = await adapter.deliver(message)

    assert result.provider_message_id == f"<{message.id}@relayq>"
    assert inbox.authenticated == [True]


async def test_implicit_tls(inbox: Inbox, certificate: tuple[Path, Path]) -> None:
    with smtp_server(inbox, ssl_context=server_tls(certificate)) as port:
        adapter = SmtpAdapter(
            parse_smtp_url(f"smtps://127.0.0.1:{port}"),
            email_from=SENDER,
            timeout=3,
            tls_context=client_tls(certificate),
        )
        await adapter.deliver(email_message())

    assert len(inbox.envelopes) == 1


async def test_a_rejected_password_pauses_the_channel_and_is_never_shown(
    inbox: Inbox, certificate: tuple[Path, Path]
) -> None:
    options = {"tls_context": server_tls(certificate), "require_starttls": True}
    with (
        smtp_server(inbox, authenticator=_authenticate, auth_required=True, **options) as port,
        structlog.testing.capture_logs() as logs,
    ):
        server = parse_smtp_url(f"smtp://{USER}:wrong-{PASSWORD}@127.0.0.1:{port}")
        adapter = SmtpAdapter(
            server, email_from=SENDER, timeout=3, tls_context=client_tls(certificate)
        )
        with pytest.raises(ChannelDownError) as caught:
            await adapter.deliver(email_message())

    assert caught.value.kind == "smtp_535"
    assert "at connect" in caught.value.reason
    shown = [str(caught.value), repr(caught.value), caught.value.reason, repr(server), str(logs)]
    assert not any(PASSWORD in text for text in shown)
    assert inbox.envelopes == []


@pytest.mark.parametrize(
    ("recipient", "error", "kind"),
    [
        ("nobody@example.com", PermanentDeliveryError, "smtp_550"),
        ("busy@example.com", RetryableDeliveryError, "smtp_451"),
        ("slow@example.com", ThrottledError, "smtp_421"),
    ],
)
async def test_replies_to_the_recipient(
    plain: SmtpAdapter, recipient: str, error: type[Exception], kind: str
) -> None:
    with pytest.raises(error) as caught:
        await plain.deliver(email_message(recipient))

    assert type(caught.value) is error
    assert getattr(caught.value, "kind", None) == kind
    assert "at rcpt" in str(caught.value)
    if isinstance(caught.value, ThrottledError):
        assert caught.value.scope is ThrottleScope.CHANNEL


async def test_a_message_refused_after_data_is_permanent(plain: SmtpAdapter, inbox: Inbox) -> None:
    inbox.data_reply = "554 5.6.0 message content rejected"
    with pytest.raises(PermanentDeliveryError) as caught:
        await plain.deliver(email_message())

    assert caught.value.kind == "smtp_554"
    assert "at data" in caught.value.reason


async def test_a_closed_port_is_retryable() -> None:
    adapter = plain_adapter(free_port())
    with pytest.raises(RetryableDeliveryError) as caught:
        await adapter.deliver(email_message())

    assert caught.value.kind == "connection"


async def test_the_fence_is_checked_after_the_envelope_just_before_the_message(
    plain: SmtpAdapter, inbox: Inbox
) -> None:
    checks: list[int] = []

    def allowed() -> bool:
        checks.append(inbox.rcpts)
        return True

    with send_fence(allowed):
        await plain.deliver(email_message())

    assert checks == [1]  # once, with RCPT already answered
    assert len(inbox.envelopes) == 1


async def test_a_fenced_send_leaves_nothing_at_the_server(plain: SmtpAdapter, inbox: Inbox) -> None:
    with send_fence(lambda: False), pytest.raises(SendFencedError):
        await plain.deliver(email_message())

    assert inbox.envelopes == []
    await plain.deliver(email_message())  # the next send opens a fresh connection
    assert len(inbox.envelopes) == 1


async def test_an_invalid_payload_is_permanent_before_any_connection() -> None:
    adapter = plain_adapter(free_port())  # nothing listens: a connection would fail
    for message in (
        email_message(subject=""),
        email_message(text=None),
        email_message("not-an-address"),
        Message(
            id="x", tenant="t", conversation="c", recipient="a@b.c", priority="normal",
            payload=b"[1]", created_ms=0,
        ),
    ):  # fmt: skip
        with pytest.raises(PermanentDeliveryError) as caught:
            await adapter.deliver(message)
        assert caught.value.kind == "invalid_payload"


def test_smtp_url_forms_and_errors_never_show_the_password() -> None:
    assert parse_smtp_url("smtp://mail.example.com") == SmtpServer(
        "mail.example.com", 25, None, None, False
    )
    assert parse_smtp_url("smtps://u%40x:p%3Aw@mail.example.com") == SmtpServer(
        "mail.example.com", 465, "u@x", "p:w", True
    )
    assert "p:w" not in repr(parse_smtp_url("smtps://u:p%3Aw@h:2525"))
    for url in (f"http://u:{PASSWORD}@h", f"smtp://u:{PASSWORD}@h:port", f"smtp://u:{PASSWORD}@"):
        with pytest.raises(ConfigurationError) as caught:
            parse_smtp_url(url)
        assert PASSWORD not in str(caught.value)


def test_from_settings_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="RELAYQ_SMTP_URL and RELAYQ_EMAIL_FROM"):
        SmtpAdapter.from_settings(Settings())
    secret = f"smtp://u:{PASSWORD}@h"
    with pytest.raises(ConfigurationError) as caught:
        SmtpAdapter.from_settings(Settings(smtp_url=secret))
    assert str(caught.value) == "the smtp adapter needs RELAYQ_EMAIL_FROM"
    adapter = SmtpAdapter.from_settings(Settings(smtp_url=secret, email_from=SENDER))
    assert isinstance(adapter, SmtpAdapter)


def test_without_aiosmtplib_the_adapter_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtplib", None)  # import aiosmtplib -> ImportError
    with pytest.raises(ConfigurationError, match=r"install relayq\[smtp\]"):
        plain_adapter(25)
