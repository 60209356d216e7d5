"""The email fallback chain, SendGrid then SMTP, against the local SendGrid and a real SMTP
server: SendGrid down (5xx, a closed port, a rejected key) -> SMTP delivers; a permanent
error stops the chain; both down -> one retryable error holding both reasons (throttled
when both throttled, channel down when both are down); no key or password in any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog

from relayq.consumers.adapters.fallback_chain import FallbackChain
from relayq.consumers.adapters.sendgrid_mail import SendGridAdapter
from relayq.consumers.adapters.smtp_mail import SmtpAdapter, parse_smtp_url
from relayq.ops.fake_http import Fault
from relayq.ops.sendgrid_fake import SendGridFake
from relayq.streams.deliverer import Deliverer, DeliveryResult, send_fence
from relayq.streams.errors import (
    ChannelDownError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SendFencedError,
    ThrottledError,
    ThrottleScope,
)
from relayq.streams.message import Message
from relayq.streams.redis_server import free_port
from tests.test_sendgrid_adapter import API_KEY, local_sendgrid
from tests.test_smtp_adapter import PASSWORD, SENDER, Inbox, email_message, smtp_server


@pytest.fixture
def sendgrid() -> Iterator[tuple[str, SendGridFake]]:
    with local_sendgrid() as running:
        yield running


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp_port(inbox: Inbox) -> Iterator[int]:
    with smtp_server(inbox) as port:
        yield port


def _chain(sendgrid_url: str, smtp_port: int, api_key: str = API_KEY) -> FallbackChain:
    return FallbackChain(
        [
            SendGridAdapter(api_key, email_from=SENDER, api_url=sendgrid_url),
            SmtpAdapter(
                parse_smtp_url(f"smtp://relayq:{PASSWORD}@127.0.0.1:{smtp_port}"),
                email_from=SENDER,
                timeout=3,
            ),
        ]
    )


@pytest.fixture
async def chain(sendgrid: tuple[str, SendGridFake], smtp_port: int) -> AsyncIterator[FallbackChain]:
    email_chain = _chain(sendgrid[0], smtp_port)
    yield email_chain
    await email_chain.aclose()


def _no_auth_smtp(port: int) -> SmtpAdapter:
    return SmtpAdapter(parse_smtp_url(f"smtp://127.0.0.1:{port}"), email_from=SENDER, timeout=3)


async def test_sendgrid_first_when_it_works(
    chain: FallbackChain, sendgrid: tuple[str, SendGridFake], inbox: Inbox
) -> None:
    result = await chain.deliver(email_message())

    assert result.provider_message_id == sendgrid[1].requests[0].message_id
    assert inbox.envelopes == []


async def test_sendgrid_5xx_falls_back_to_smtp(
    sendgrid: tuple[str, SendGridFake], smtp_port: int, inbox: Inbox
) -> None:
    sendgrid[1].faults.add(Fault(status=503))
    chain = FallbackChain(
        [
            SendGridAdapter(API_KEY, email_from=SENDER, api_url=sendgrid[0]),
            _no_auth_smtp(smtp_port),
        ]
    )
    message = email_message()
    try:
        result = await chain.deliver(message)
    finally:
        await chain.aclose()

    assert result.provider_message_id == f"<{message.id}@relayq>"
    assert [r.status for r in sendgrid[1].requests] == [503]
    assert inbox.received()["X-Relayq-Id"] == message.id


@pytest.mark.parametrize("sendgrid_down", ["closed_port", "wrong_key"])
async def test_sendgrid_unreachable_or_its_key_rejected_falls_back_to_smtp(
    sendgrid: tuple[str, SendGridFake], smtp_port: int, inbox: Inbox, sendgrid_down: str
) -> None:
    url, key = sendgrid[0], API_KEY
    if sendgrid_down == "closed_port":
        url = f"http://127.0.0.1:{free_port()}"
    else:
        key = "SG.revoked"
    chain = FallbackChain(
        [
            SendGridAdapter(key, email_from=SENDER, api_url=url),
            _no_auth_smtp(smtp_port),
        ]
    )
    try:
        with structlog.testing.capture_logs() as logs:
            await chain.deliver(email_message())
    finally:
        await chain.aclose()

    assert len(inbox.envelopes) == 1
    # A rejected key is an alert (error) even though SMTP covered for it; a dead port is not.
    expected = "error" if sendgrid_down == "wrong_key" else "warning"
    assert [log["log_level"] for log in logs] == [expected]


async def test_both_down_is_one_retryable_error_with_both_reasons(
    sendgrid: tuple[str, SendGridFake],
) -> None:
    sendgrid[1].faults.add(Fault(status=503))
    chain = _chain(sendgrid[0], free_port())  # nothing listens for SMTP
    try:
        with (
            structlog.testing.capture_logs() as logs,
            pytest.raises(RetryableDeliveryError) as caught,
        ):
            await chain.deliver(email_message())
    finally:
        await chain.aclose()

    error = caught.value
    assert type(error) is RetryableDeliveryError
    assert error.kind == "fallback_exhausted"
    sendgrid_reason, smtp_reason = error.reason.split("; ", 1)
    assert sendgrid_reason.startswith("sendgrid: SendGrid HTTP 503")
    assert smtp_reason.startswith("smtp: SMTP connection at connect")
    assert [(log["adapter"], log["kind"]) for log in logs] == [
        ("sendgrid", "sendgrid_503"),
        ("smtp", "connection"),
    ]
    shown = [str(error), repr(error), error.reason, str(logs)]
    assert not any(API_KEY in text or PASSWORD in text for text in shown)


async def test_a_permanent_error_stops_the_chain(
    chain: FallbackChain, sendgrid: tuple[str, SendGridFake], inbox: Inbox
) -> None:
    sendgrid[1].faults.add(Fault(code="invalid_recipient"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await chain.deliver(email_message())

    assert caught.value.kind == "sendgrid_400"
    assert caught.value.reason.startswith("sendgrid: SendGrid HTTP 400")
    assert inbox.rcpts == 0  # SMTP never tried


async def test_a_permanent_error_after_a_fallback_keeps_both_reasons(
    sendgrid: tuple[str, SendGridFake], smtp_port: int
) -> None:
    sendgrid[1].faults.add(Fault(status=500))
    chain = FallbackChain(
        [
            SendGridAdapter(API_KEY, email_from=SENDER, api_url=sendgrid[0]),
            _no_auth_smtp(smtp_port),
        ]
    )
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await chain.deliver(email_message("nobody@example.com"))
    finally:
        await chain.aclose()

    assert caught.value.kind == "smtp_550"
    assert caught.value.reason.startswith("sendgrid: SendGrid HTTP 500")
    assert "; smtp: SMTP 550 at rcpt" in caught.value.reason


async def test_both_throttled_is_throttled_with_the_shortest_wait(
    sendgrid: tuple[str, SendGridFake], smtp_port: int
) -> None:
    sendgrid[1].faults.add(Fault(status=429, retry_after=30))
    chain = FallbackChain(
        [
            SendGridAdapter(API_KEY, email_from=SENDER, api_url=sendgrid[0]),
            _no_auth_smtp(smtp_port),
        ]
    )
    try:
        with pytest.raises(ThrottledError) as caught:
            await chain.deliver(email_message("slow@example.com"))  # SMTP answers 421
    finally:
        await chain.aclose()

    assert caught.value.kind == "fallback_exhausted"
    assert caught.value.scope is ThrottleScope.CHANNEL
    assert caught.value.retry_after is not None and 28 <= caught.value.retry_after <= 31


async def test_both_channels_down_is_channel_down(sendgrid: tuple[str, SendGridFake]) -> None:
    revoked = SendGridAdapter("SG.revoked", email_from=SENDER, api_url=sendgrid[0])
    chain = FallbackChain([revoked, revoked], names=["primary", "secondary"])
    try:
        with pytest.raises(ChannelDownError) as caught:
            await chain.deliver(email_message())
    finally:
        await chain.aclose()

    assert caught.value.reason.startswith("primary: SendGrid HTTP 401")
    assert "; secondary: SendGrid HTTP 401" in caught.value.reason


async def test_a_fenced_send_stops_the_chain_at_once(
    chain: FallbackChain, sendgrid: tuple[str, SendGridFake], inbox: Inbox
) -> None:
    with send_fence(lambda: False), pytest.raises(SendFencedError):
        await chain.deliver(email_message())

    assert sendgrid[1].requests == []
    assert inbox.rcpts == 0


class _Closing:
    """A deliverer that records its aclose (and may fail in it)."""

    def __init__(self, closed: list[str], name: str, fail: bool = False) -> None:
        self.closed, self.name, self.fail = closed, name, fail

    async def deliver(self, message: Message) -> DeliveryResult:
        return DeliveryResult(self.name)

    async def aclose(self) -> None:
        self.closed.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} failed to close")


async def test_aclose_closes_every_adapter_even_when_one_fails() -> None:
    closed: list[str] = []
    adapters: list[Deliverer] = [_Closing(closed, name, fail=name == "a") for name in "ab"]
    chain = FallbackChain(adapters)

    assert (await chain.deliver(email_message())).provider_message_id == "a"
    with pytest.raises(RuntimeError, match="a failed to close"):
        await chain.aclose()
    assert closed == ["a", "b"]
    assert isinstance(chain, Deliverer)


def test_a_chain_needs_an_adapter_and_one_name_each() -> None:
    empty: list[Any] = []
    with pytest.raises(ValueError, match="at least one adapter"):
        FallbackChain(empty)
    with pytest.raises(ValueError, match="one name per adapter"):
        FallbackChain([_Closing([], "a")], names=["a", "b"])
    assert FallbackChain([_Closing([], "a")]).names == ("a",)  # its `name` attribute
