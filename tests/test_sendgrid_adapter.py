"""The SendGrid adapter against the local SendGrid (``ops.sendgrid_fake``) on 127.0.0.1:
the documented v3 Mail Send body, 202 + X-Message-Id as the provider id, and what each
error becomes — 429 waits until X-RateLimit-Reset (the whole channel), 400 is permanent
with the field, 401/403 pause the channel, 5xx and resets retry — with the API key never
in an error or a log. Also: the fake answers as SendGrid documents (auth, validation)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog

from relayq.consumers.adapters.sendgrid_codes import CODES, classify, seconds_until_reset
from relayq.consumers.adapters.sendgrid_mail import SendGridAdapter
from relayq.ops.fake_http import Fault
from relayq.ops.local_provider import ProviderThread
from relayq.ops.sendgrid_fake import SendGridFake
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
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings
from tests.test_smtp_adapter import SENDER, email_message

API_KEY = "SG.test-key-never-shown.0123456789"


@contextlib.contextmanager
def local_sendgrid(latency: float = 0.0) -> Iterator[tuple[str, SendGridFake]]:
    """A local SendGrid on its own thread: (its API base URL, the fake)."""
    fake = SendGridFake(API_KEY, latency=latency)
    thread = ProviderThread()
    fake.mount(thread.provider)  # before start: mounting is a dict write
    with thread:
        yield thread.provider.base_url("/sendgrid"), fake


@pytest.fixture
def sendgrid() -> Iterator[tuple[str, SendGridFake]]:
    with local_sendgrid() as running:
        yield running


@pytest.fixture
def fake(sendgrid: tuple[str, SendGridFake]) -> SendGridFake:
    return sendgrid[1]


@pytest.fixture
async def adapter(sendgrid: tuple[str, SendGridFake]) -> AsyncIterator[SendGridAdapter]:
    sendgrid_adapter = SendGridAdapter(API_KEY, email_from=SENDER, api_url=sendgrid[0], timeout=3)
    yield sendgrid_adapter
    await sendgrid_adapter.aclose()


async def test_sends_the_documented_body_and_returns_x_message_id(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    message = email_message(html="<p>hi</p>", reply_to="help@example.com")
    result = await adapter.deliver(message)

    [sent] = fake.requests
    assert sent.status == 202
    assert result.provider_message_id == sent.message_id is not None
    assert (sent.to, sent.sender, sent.reply_to) == ("ann@example.com", SENDER, "help@example.com")
    assert (sent.subject, sent.text, sent.html) == ("Your order", "It ships today.", "<p>hi</p>")
    assert sent.custom_args == {"relayq_id": message.id}


async def test_the_messages_sender_is_the_from(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    await adapter.deliver(email_message(sender="Ann's Shop <ann@shop.example>"))

    assert fake.requests[0].sender == "ann@shop.example"


async def test_429_waits_for_the_whole_channel_until_the_reset(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    fake.faults.add(Fault(status=429, retry_after=30, times=1))
    with pytest.raises(ThrottledError) as caught:
        await adapter.deliver(email_message())

    assert caught.value.scope is ThrottleScope.CHANNEL
    assert caught.value.kind == "sendgrid_429"
    assert caught.value.retry_after is not None and 28 <= caught.value.retry_after <= 31
    assert "too many requests" in caught.value.reason
    await adapter.deliver(email_message())  # the rule was used up


async def test_429_without_a_reset_header_leaves_the_wait_to_the_worker(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    fake.faults.add(Fault(status=429))
    with pytest.raises(ThrottledError) as caught:
        await adapter.deliver(email_message())

    assert caught.value.retry_after is None


async def test_400_is_permanent_and_names_the_field(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    fake.faults.add(Fault(match="recipient", value="ann@example.com", code="invalid_recipient"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await adapter.deliver(email_message())

    assert caught.value.kind == "sendgrid_400"
    assert caught.value.reason == (
        "SendGrid HTTP 400 (personalizations.0.to.0.email): "
        "personalizations.0.to.0.email: Does not contain a valid address."
    )
    await adapter.deliver(email_message("bob@example.com"))  # only that recipient


async def test_a_wrong_key_pauses_the_channel_and_is_never_shown(sendgrid: Any) -> None:
    url, fake = sendgrid
    wrong = SendGridAdapter("SG.wrong-" + API_KEY, email_from=SENDER, api_url=url, timeout=3)
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(ChannelDownError) as caught:
            await wrong.deliver(email_message())
    finally:
        await wrong.aclose()

    assert caught.value.kind == "sendgrid_401"
    assert "authorization grant is invalid" in caught.value.reason
    assert fake.requests[0].status == 401
    shown = [str(caught.value), repr(caught.value), caught.value.reason, str(logs)]
    assert not any("test-key-never-shown" in text for text in shown)


async def test_403_over_the_from_is_permanent_for_its_sender_and_down_for_the_default(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    fake.faults.add(Fault(code="sender_identity"))
    with pytest.raises(PermanentDeliveryError) as own_sender:
        await adapter.deliver(email_message(sender="unverified@example.com"))
    with pytest.raises(ChannelDownError) as default_sender:
        await adapter.deliver(email_message())

    assert own_sender.value.kind == default_sender.value.kind == "sendgrid_403_from"
    assert "verified Sender Identity" in own_sender.value.reason


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable(adapter: SendGridAdapter, fake: SendGridFake, status: int) -> None:
    fake.faults.add(Fault(status=status))
    with pytest.raises(RetryableDeliveryError) as caught:
        await adapter.deliver(email_message())

    assert type(caught.value) is RetryableDeliveryError
    assert caught.value.kind == f"sendgrid_{status}"


async def test_413_is_permanent(adapter: SendGridAdapter, fake: SendGridFake) -> None:
    fake.faults.add(Fault(status=413))
    with pytest.raises(PermanentDeliveryError, match="too large"):
        await adapter.deliver(email_message())


async def test_a_reset_connection_and_a_closed_port_are_retryable(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    fake.faults.add(Fault(reset=True, times=1))
    with pytest.raises(RetryableDeliveryError) as reset:
        await adapter.deliver(email_message())
    closed = SendGridAdapter(
        API_KEY, email_from=SENDER, api_url=f"http://127.0.0.1:{free_port()}", timeout=3
    )
    try:
        with pytest.raises(RetryableDeliveryError) as refused:
            await closed.deliver(email_message())
    finally:
        await closed.aclose()

    assert reset.value.kind == refused.value.kind == "connection"


async def test_an_invalid_payload_is_never_sent(
    adapter: SendGridAdapter, fake: SendGridFake
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await adapter.deliver(email_message(subject="two\nlines"))

    assert caught.value.kind == "invalid_payload"
    assert "subject" in caught.value.reason
    assert fake.requests == []


async def test_a_fenced_send_sends_nothing(adapter: SendGridAdapter, fake: SendGridFake) -> None:
    with send_fence(lambda: False), pytest.raises(SendFencedError):
        await adapter.deliver(email_message())

    assert fake.requests == []


def test_from_settings_names_what_is_missing_never_the_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SendGridAdapter.from_settings(Settings(sendgrid_api_key=API_KEY))
    assert str(caught.value) == "the sendgrid adapter needs RELAYQ_EMAIL_FROM"
    with pytest.raises(ConfigurationError, match="RELAYQ_SENDGRID_API_KEY and RELAYQ_EMAIL_FROM"):
        SendGridAdapter.from_settings(Settings())
    adapter = SendGridAdapter.from_settings(Settings(sendgrid_api_key=API_KEY, email_from=SENDER))
    assert isinstance(adapter, SendGridAdapter)


def test_the_table_names_a_source_for_every_entry_and_unlisted_statuses_default() -> None:
    assert all(entry.source.startswith("https://") for entry in CODES.values())
    assert isinstance(classify(404, None, "not found", None), PermanentDeliveryError)
    assert type(classify(599, None, "?", 3.0)) is RetryableDeliveryError
    assert classify(202, None, "", None) is None
    assert seconds_until_reset(str(int(time.time()) + 60)) is not None
    assert seconds_until_reset("soon") is None


# -- the fake answers as SendGrid documents ----------------------------------------------


def test_the_fake_checks_the_key_and_validates_like_sendgrid(sendgrid: Any) -> None:
    url, fake = sendgrid
    send = f"{url}/v3/mail/send"
    auth = {"Authorization": f"Bearer {API_KEY}"}

    wrong = httpx.post(send, json={}, headers={"Authorization": "Bearer nope"})
    empty = httpx.post(send, json={}, headers=auth)
    bad_to = httpx.post(
        send,
        json={
            "personalizations": [{"to": [{"email": "nope"}]}],
            "from": {"email": SENDER},
            "subject": "s",
            "content": [{"type": "text/plain", "value": ""}],
        },
        headers=auth,
    )

    assert wrong.status_code == 401
    assert wrong.json() == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
                "help": None,
            }
        ]
    }
    assert empty.status_code == 400
    assert [e["field"] for e in empty.json()["errors"]] == [
        "personalizations",
        "from.email",
        "subject",
        "content",
    ]
    assert [e["field"] for e in bad_to.json()["errors"]] == [
        "personalizations.0.to.0.email",
        "content.0.value",
    ]
    assert [r.status for r in fake.requests] == [401, 400, 400]


def test_the_fake_takes_faults_and_lists_requests_over_http(sendgrid: Any) -> None:
    url, _fake = sendgrid
    rules = httpx.post(f"{url}/_faults", json=[{"status": 503, "times": 1}])
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "a@example.com"}]}],
        "from": {"email": SENDER},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
    }
    auth = {"Authorization": f"Bearer {API_KEY}"}
    failed = httpx.post(f"{url}/v3/mail/send", json=body, headers=auth)
    accepted = httpx.post(f"{url}/v3/mail/send", json=body, headers=auth)
    listed = httpx.get(f"{url}/_requests").json()

    assert rules.json() == {"rules": 1}
    assert failed.status_code == 503
    assert accepted.status_code == 202 and accepted.content == b""
    assert accepted.headers["X-Message-Id"]
    assert [(r["status"], r["to"]) for r in listed] == [
        (503, "a@example.com"),
        (202, "a@example.com"),
    ]
    assert listed[1]["message_id"] == accepted.headers["X-Message-Id"]
