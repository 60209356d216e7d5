"""The SMTP adapter (aiosmtplib, the ``relayq[smtp]`` extra): one SMTP transaction per
message, one connection per send (no pool: an email channel runs at tens per second).

``RELAYQ_SMTP_URL``: ``smtp://user:password@host:port`` upgrades with STARTTLS when the
server offers it, ``smtps://`` speaks TLS from the start (port 465 by default, 25 for
``smtp://``); without a user nothing is authenticated. Certificates are checked against
the trust store HTTP uses (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``).

The email (``consumers.adapters.email_payload``) gets ``Message-ID: <{message id}@relayq>``
— the provider id returned — and ``X-Relayq-Id: {message id}``.

The send fence: the envelope (``MAIL FROM``, ``RCPT TO``) and the ``DATA`` command go first;
once the server answered ``354``, ``check_send_allowed()`` runs and the whole message with
its closing ``.`` is handed to the socket in the same step, with no ``await`` in between.
A server delivers nothing before that final ``.``, so no mail can leave once the lease may
have run out; when the fence stops it, the connection is closed mid-``DATA`` and the server
drops the transaction (RFC 5321 §4.1.1.4). Not fenced: what precedes (connecting, TLS,
AUTH, the envelope — nothing is delivered by them) and the wait for the final answer.

Replies are classified by :data:`REPLIES` (RFC 5321 §4.2, RFC 4954 §6): 421 throttles the
channel; other 4xx retry; 530/534/535/538 at AUTH (and 5xx at connect or EHLO) pause the
channel; other 5xx are permanent. Connection refused, timeouts and a dropped connection
are retryable. The password goes only to the server's AUTH: no error text holds it or
the URL.
"""

from __future__ import annotations

import contextlib
import email.message
import email.policy
import email.utils
import enum
import re
import ssl
import urllib.parse
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

from relayq.consumers.adapters.email_payload import Email, email_of
from relayq.consumers.provider_http import ProviderHttp
from relayq.streams.deliverer import DeliveryResult, check_send_allowed
from relayq.streams.errors import (
    ChannelDownError,
    ConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
    ThrottleScope,
)
from relayq.streams.message import Message
from relayq.streams.settings import Settings

if TYPE_CHECKING:
    import aiosmtplib

__all__ = ("REPLIES", "Phase", "SmtpAdapter", "SmtpServer", "classify_reply", "parse_smtp_url")

_RFC5321 = "https://www.rfc-editor.org/rfc/rfc5321#section-4.2.3"
_RFC4954 = "https://www.rfc-editor.org/rfc/rfc4954#section-6"
_LEADING_DOT = re.compile(rb"(?m)^\.")


class Phase(enum.StrEnum):
    """Where in the transaction a reply came: the same code means different things."""

    CONNECT = "connect"
    """Greeting, EHLO, STARTTLS and AUTH: a refusal concerns the whole channel."""
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


class _Reply(NamedTuple):
    meaning: str
    source: str


REPLIES: dict[int, _Reply] = {
    421: _Reply("service not available, closing the channel (throttles the channel)", _RFC5321),
    450: _Reply("mailbox unavailable, e.g. busy or greylisted (retry)", _RFC5321),
    451: _Reply("local error in processing (retry)", _RFC5321),
    452: _Reply("insufficient system storage (retry)", _RFC5321),
    454: _Reply("temporary authentication failure (retry)", _RFC4954),
    455: _Reply("server unable to accommodate parameters (retry)", _RFC5321),
    530: _Reply("authentication required (pauses the channel)", _RFC4954),
    534: _Reply("authentication mechanism is too weak (pauses the channel)", _RFC4954),
    535: _Reply("authentication credentials invalid (pauses the channel)", _RFC4954),
    538: _Reply("encryption required for the authentication mechanism (pauses)", _RFC4954),
    550: _Reply("mailbox unavailable: not found, no access, policy (permanent)", _RFC5321),
    551: _Reply("user not local (permanent)", _RFC5321),
    552: _Reply("exceeded storage allocation (permanent)", _RFC5321),
    553: _Reply("mailbox name not allowed (permanent)", _RFC5321),
    554: _Reply("transaction failed; at connect: no SMTP service here (permanent)", _RFC5321),
    555: _Reply("MAIL/RCPT parameters not recognized (permanent)", _RFC5321),
}
"""The documented replies and what relayq does (others: 4xx retry, 5xx permanent)."""

_AUTH_REFUSED = frozenset({530, 534, 535, 538})


class SmtpServer(NamedTuple):
    """Where and how to connect (from ``RELAYQ_SMTP_URL``); repr hides the password."""

    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool

    def __repr__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        return f"SmtpServer({scheme}://{user}{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp[s]://[user[:password]@]host[:port]``; ConfigurationError (never showing the
    URL: it holds the password) when it is not one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError("RELAYQ_SMTP_URL is not a URL (smtp[s]://...)") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigurationError(
            "RELAYQ_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://..."
        )
    implicit_tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        implicit_tls=implicit_tls,
    )


def classify_reply(phase: Phase, code: int, text: str) -> DeliveryError:
    """The error an SMTP reply means at ``phase`` (see :data:`REPLIES`)."""
    kind = f"smtp_{code}"
    reason = f"SMTP {code} at {phase}: {text}"[:500]
    if code == 421:
        return ThrottledError(reason, kind=kind, scope=ThrottleScope.CHANNEL)
    if 400 <= code < 500:
        return RetryableDeliveryError(reason, kind=kind)
    if code in _AUTH_REFUSED or phase is Phase.CONNECT:
        return ChannelDownError(reason, kind=kind)
    return PermanentDeliveryError(reason, kind=kind)


def _aiosmtplib() -> ModuleType:
    try:
        import aiosmtplib
    except ImportError:
        raise ConfigurationError(
            "the smtp adapter needs aiosmtplib: install relayq[smtp]"
        ) from None
    return aiosmtplib


class SmtpAdapter:
    """Sends each message as one SMTP transaction (a Deliverer). ``timeout``: seconds per
    step (connect, each command, each answer); the worker bounds the whole attempt."""

    name = "smtp"
    """How a fallback chain's reasons call it."""

    def __init__(
        self,
        server: SmtpServer,
        *,
        email_from: str | None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self._smtp = _aiosmtplib()
        self._server = server
        self._email_from = email_from
        self._timeout = timeout
        self._tls_context = tls_context or _trust_store()  # built once: loading it costs ms
        self._local_hostname = local_hostname

    @classmethod
    def from_settings(cls, settings: Settings, http: ProviderHttp | None = None) -> SmtpAdapter:
        """``http`` is not used (SMTP is not HTTP); taken as every adapter takes it."""
        url, sender = settings.smtp_url, settings.email_from
        if not url or not sender:
            needed = {"RELAYQ_SMTP_URL": url, "RELAYQ_EMAIL_FROM": sender}
            missing = " and ".join(name for name, value in needed.items() if not value)
            raise ConfigurationError(f"the smtp adapter needs {missing}")
        return cls(parse_smtp_url(url), email_from=sender, timeout=settings.send_timeout)

    async def deliver(self, message: Message) -> DeliveryResult:
        mail = email_of(message, self._email_from)
        message_id = f"<{message.id}@relayq>"
        data = _data_lines(_mime(mail, message.id, message_id))
        client = self._client()
        try:
            await self._transaction(client, mail, data)
        finally:
            client.close()
        return DeliveryResult(message_id)

    async def aclose(self) -> None:
        return None  # one connection per send: nothing stays open

    def _client(self) -> aiosmtplib.SMTP:
        server = self._server
        tls = server.implicit_tls
        client: aiosmtplib.SMTP = self._smtp.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=tls,
            start_tls=False if tls else None,  # None: STARTTLS when the server offers it
            timeout=self._timeout,
            tls_context=self._tls_context,
            local_hostname=self._local_hostname,
        )
        return client

    async def _transaction(self, client: aiosmtplib.SMTP, mail: Email, data: bytes) -> None:
        smtp = self._smtp
        phase = Phase.CONNECT
        try:
            await client.connect()
            phase = Phase.MAIL
            await client.mail(mail.sender.email)
            phase = Phase.RCPT
            await client.rcpt(mail.to.email)
            phase = Phase.DATA
            await _fenced_data(client, data, self._timeout)
        except smtp.SMTPResponseException as exc:
            raise classify_reply(phase, exc.code, exc.message) from None
        except (smtp.SMTPTimeoutError, TimeoutError) as exc:
            raise RetryableDeliveryError(
                f"SMTP timeout at {phase}: {exc}", kind="timeout"
            ) from None
        except (smtp.SMTPServerDisconnected, smtp.SMTPConnectError, OSError) as exc:
            raise _connection_error(phase, exc) from None
        except smtp.SMTPException as exc:  # AUTH or STARTTLS not offered, SMTPUTF8 missing
            raise _unsupported(phase, exc) from None
        except ValueError as exc:  # an address aiosmtplib cannot send (non-ASCII)
            raise PermanentDeliveryError(f"SMTP {phase}: {exc}", kind="smtp_address") from None
        with contextlib.suppress(Exception):
            await client.quit()


def _connection_error(phase: Phase, exc: BaseException) -> DeliveryError:
    reason = f"SMTP connection at {phase}: {exc}"[:500]
    if isinstance(exc.__cause__ or exc, ssl.SSLCertVerificationError):
        return ChannelDownError(reason, kind="smtp_tls")  # retrying cannot fix a certificate
    return RetryableDeliveryError(reason, kind="connection")


def _unsupported(phase: Phase, exc: BaseException) -> DeliveryError:
    reason = f"SMTP {phase}: {exc}"[:500]
    if phase is Phase.CONNECT:
        return ChannelDownError(reason, kind="smtp_unsupported")
    return PermanentDeliveryError(reason, kind="smtp_unsupported")


async def _fenced_data(client: aiosmtplib.SMTP, data: bytes, timeout: float) -> None:
    """DATA, then the message under the send fence (see the module's docstring)."""
    import aiosmtplib

    start = await client.execute_command(b"DATA", timeout=timeout)
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("connection lost before the message")
    check_send_allowed()  # raises SendFencedError: nothing of the message was written
    protocol.write(data)  # same step as the check: no await in between
    reply = await protocol.read_response(timeout=timeout)
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


def _mime(mail: Email, relayq_id: str, message_id: str) -> email.message.EmailMessage:
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["From"] = mail.sender.formatted()
    mime["To"] = mail.to.formatted()
    mime["Subject"] = mail.subject
    mime["Message-ID"] = message_id
    mime["X-Relayq-Id"] = relayq_id
    if mail.reply_to is not None:
        mime["Reply-To"] = mail.reply_to.formatted()
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    if mail.text:
        mime.set_content(mail.text)
        if mail.html:
            mime.add_alternative(mail.html, subtype="html")
    elif mail.html:
        mime.set_content(mail.html, subtype="html")
    return mime


def _data_lines(mime: email.message.EmailMessage) -> bytes:
    """The message as DATA sends it: CRLF lines, a leading ``.`` doubled, ``.`` to end."""
    raw = _LEADING_DOT.sub(b"..", mime.as_bytes())
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


def _trust_store() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()
