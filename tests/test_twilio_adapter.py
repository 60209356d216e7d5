"""The Twilio adapter against the local Twilio fake: what it sends (form, auth, From or
MessagingServiceSid, whatsapp: addresses, StatusCallback with relayq_id) and what each
answer becomes - the SID on success, Twilio's codes through the error table (retry,
throttle the sender or the account, dead-letter, pause the channel) - with the auth
token never in an error, a repr or a log."""

from __future__ import annotations

import base64
import itertools
import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from relayq.consumers.adapters.twilio_codes import CODES, Outcome, classify
from relayq.consumers.adapters.twilio_messages import TwilioAdapter
from relayq.consumers.provider_http import ProviderHttp
from relayq.ops.fake_http import Fault
from relayq.ops.local_provider import ProviderThread
from relayq.ops.twilio_fake import CallbackPlan, TwilioFake
from relayq.streams.deliverer import DeliveryResult
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
from tests.test_twilio_fake import FROM, SID, TOKEN, callback_receiver, running_twilio, until

_ids = itertools.count(1)
Twilio = tuple[ProviderThread, TwilioFake]


@pytest.fixture
def twilio() -> Iterator[Twilio]:
    with running_twilio() as running:
        yield running


def _message(
    recipient: str = "+15557770001",
    payload: bytes = b'{"body":"hello"}',
    *,
    sender: str | None = None,
    channel: str | None = "sms",
) -> Message:
    return Message(
        id=f"m-{next(_ids)}",
        tenant="acme",
        conversation="c-1",
        recipient=recipient,
        priority="normal",
        payload=payload,
        created_ms=1_700_000_000_000,
        sender=sender,
        channel=channel,
    )


def _adapter(thread: ProviderThread, **options: Any) -> TwilioAdapter:
    settings: dict[str, Any] = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "api_url": thread.provider.base_url("/twilio"),
        "default_from": FROM,
        "timeout": 2.0,
    }
    return TwilioAdapter(**(settings | options))


async def _deliver(thread: ProviderThread, message: Message, **options: Any) -> DeliveryResult:
    adapter = _adapter(thread, **options)
    try:
        return await adapter.deliver(message)
    finally:
        await adapter.aclose()


async def _failure(thread: ProviderThread, message: Message, **options: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await _deliver(thread, message, **options)
    return caught.value


# -- what is sent --------------------------------------------------------------------------


async def test_a_message_is_sent_and_its_sid_is_the_provider_id(twilio: Twilio) -> None:
    thread, fake = twilio
    result = await _deliver(thread, _message())
    (request,) = fake.requests
    assert request.status == 201 and result.provider_message_id == request.sid
    assert result.provider_message_id is not None and result.provider_message_id.startswith("SM")
    assert request.path == f"/twilio/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.form == {"To": ["+15557770001"], "From": [FROM], "Body": ["hello"]}


async def test_text_media_sender_and_messaging_service(twilio: Twilio) -> None:
    thread, fake = twilio
    media = b'{"text":"see","media_url":["https://e.x/a.png","https://e.x/b.png"]}'
    await _deliver(thread, _message(payload=media, sender="+15550009999"))
    await _deliver(thread, _message(payload=b'{"media_url":"https://e.x/c.png"}'))
    await _deliver(thread, _message(sender="MG" + "4" * 32))
    first, second, third = fake.requests
    assert first.form == {
        "To": ["+15557770001"],
        "From": ["+15550009999"],
        "Body": ["see"],
        "MediaUrl": ["https://e.x/a.png", "https://e.x/b.png"],
    }
    assert second.form["MediaUrl"] == ["https://e.x/c.png"] and "Body" not in second.form
    assert third.field("MessagingServiceSid") == "MG" + "4" * 32 and "From" not in third.form
    assert [r.status for r in fake.requests] == [201, 201, 201]


async def test_whatsapp_addresses(twilio: Twilio) -> None:
    thread, fake = twilio
    await _deliver(thread, _message("+15557770002", channel="whatsapp"))
    await _deliver(thread, _message("whatsapp:+15557770003", sender="whatsapp:+15550001111"))
    await _deliver(thread, _message("+15557770004", channel="whatsapp", sender="MG" + "5" * 32))
    first, second, third = fake.requests
    assert (first.field("To"), first.field("From")) == ("whatsapp:+15557770002", f"whatsapp:{FROM}")
    assert (second.field("To"), second.field("From")) == (
        "whatsapp:+15557770003",
        "whatsapp:+15550001111",
    )
    assert third.field("To") == "whatsapp:+15557770004"
    assert third.field("MessagingServiceSid") == "MG" + "5" * 32


@pytest.mark.parametrize(
    "payload", [b'{"html":"<p>x</p>"}', b'{"body":""}', b'{"body":3}', b"not json", b"[1]"]
)
async def test_a_payload_without_body_or_media_is_dead_lettered_unsent(
    twilio: Twilio, payload: bytes
) -> None:
    thread, fake = twilio
    error = await _failure(thread, _message(payload=payload))
    assert type(error) is PermanentDeliveryError and error.kind == "invalid_payload"
    assert fake.requests == []


async def test_no_sender_anywhere_is_permanent(twilio: Twilio) -> None:
    thread, fake = twilio
    error = await _failure(thread, _message(), default_from=None)
    assert type(error) is PermanentDeliveryError and error.kind == "no_sender"
    assert "RELAYQ_TWILIO_FROM" in error.reason and fake.requests == []


@pytest.mark.parametrize(
    ("callback", "expected"),
    [
        ("https://relayq.example/v1/receipts/twilio", "https://relayq.example/v1/receipts/twilio"),
        ("https://relayq.example/r?tenant=a%20b&x=", "https://relayq.example/r?tenant=a%20b&x="),
    ],
)
async def test_status_callback_carries_relayq_id(
    twilio: Twilio, callback: str, expected: str
) -> None:
    thread, fake = twilio
    fake.callback_plan = CallbackPlan(statuses=[])
    message = _message()
    await _deliver(thread, message, status_callback=callback)
    sent = fake.requests[0].field("StatusCallback") or ""
    separator = "&" if "?" in expected else "?"
    assert sent == f"{expected}{separator}relayq_id={message.id}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(sent).query)
    assert query["relayq_id"] == [message.id]


async def test_signed_callbacks_come_back_to_relayq_with_the_message_id() -> None:
    async with callback_receiver(TOKEN) as (url, received):
        with running_twilio() as (thread, fake):
            message = _message()
            result = await _deliver(thread, message, status_callback=url)
            await until(lambda: len(fake.callbacks) == 2, "two callbacks")
    assert [p["MessageStatus"] for p in received] == ["sent", "delivered"]  # both verified
    for params in received:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(params["url"]).query)
        assert query == {"tag": ["1"], "relayq_id": [message.id]}
        assert params["MessageSid"] == result.provider_message_id


# -- what each answer becomes ----------------------------------------------------------------


@pytest.mark.parametrize("code", [21211, 21610, 63016, 21614, 21408])
async def test_each_permanent_code_is_dead_lettered_with_twilio_s_code(
    twilio: Twilio, code: int
) -> None:
    thread, fake = twilio
    fake.faults.add(Fault(match="recipient", value="+15557770005", code=str(code)))
    error = await _failure(thread, _message("+15557770005"))
    assert type(error) is PermanentDeliveryError and error.kind == f"twilio_{code}"
    assert error.reason.startswith(f"twilio {code}: ") and "(HTTP 400)" in error.reason


async def test_63018_throttles_the_sender_only(twilio: Twilio) -> None:
    thread, fake = twilio
    fake.faults.add(Fault(match="sender", value="+15550002222", code="63018", retry_after=4))
    error = await _failure(thread, _message(sender="+15550002222"))
    assert isinstance(error, ThrottledError) and error.scope is ThrottleScope.SENDER
    assert (error.kind, error.retry_after) == ("twilio_63018", 4.0)
    assert await _deliver(thread, _message(sender="+15550003333"))  # another sender sends


async def test_20429_is_safe_to_retry_and_backs_off_the_account(twilio: Twilio) -> None:
    thread, fake = twilio
    fake.faults.add(Fault(code="20429", retry_after=2, times=1))
    error = await _failure(thread, _message())
    assert isinstance(error, ThrottledError) and error.scope is ThrottleScope.CHANNEL
    assert (error.kind, error.retry_after) == ("twilio_20429", 2.0)
    assert (await _deliver(thread, _message())).provider_message_id


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault(status=503), "twilio_http_503"),
        (Fault(status=500, retry_after=3), "twilio_http_500"),
        (Fault(reset=True), "connection"),
        (Fault(timeout=5.0), "timeout"),
    ],
)
async def test_server_and_transport_failures_are_retryable(
    twilio: Twilio, fault: Fault, kind: str
) -> None:
    thread, fake = twilio
    fake.faults.add(fault)
    error = await _failure(thread, _message(), timeout=0.5)
    assert type(error) is RetryableDeliveryError and error.kind == kind
    if fault.retry_after:
        assert error.retry_after == fault.retry_after


async def test_a_rejected_auth_token_pauses_the_channel_and_is_never_shown(
    twilio: Twilio, caplog: pytest.LogCaptureFixture
) -> None:
    thread, fake = twilio
    wrong = "leaky-secret-token-0042"
    secrets = [wrong, TOKEN] + [
        base64.b64encode(f"{SID}:{token}".encode()).decode() for token in (wrong, TOKEN)
    ]
    fake.faults.add(Fault(code="21211", times=1))  # a permanent error, for its text too
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        permanent = await _failure(thread, _message())
        down = await _failure(thread, _message(), auth_token=wrong)
    assert type(down) is ChannelDownError and down.kind == "twilio_20003"
    assert down.reason == "twilio 20003: Authenticate (HTTP 401)"
    assert type(permanent) is PermanentDeliveryError
    shown = [str(e) + repr(e) + e.reason + e.kind for e in (permanent, down)]
    shown += [repr(_adapter(thread)), repr(_adapter(thread, auth_token=wrong))]
    shown += [caplog.text, repr(logs)]
    assert not [text for text in shown for secret in secrets if secret in text]


def test_the_table_classifies_a_429_without_a_code_and_unknown_codes() -> None:
    throttled = classify(429, None, "", 3.0)
    assert isinstance(throttled, ThrottledError) and throttled.scope is ThrottleScope.SENDER
    assert (throttled.retry_after, throttled.kind) == (3.0, "twilio_http_429")
    assert type(classify(502, 99999, "x", None)) is RetryableDeliveryError
    unknown = classify(400, 99999, "odd", None)
    assert isinstance(unknown, PermanentDeliveryError) and unknown.kind == "twilio_99999"
    assert unknown.reason == "twilio 99999: odd (HTTP 400)"
    assert type(classify(401, None, "", None)) is ChannelDownError
    daily = classify(429, 63038, "limit", None)
    assert isinstance(daily, ThrottledError) and daily.retry_after == 3600.0
    assert classify(201, None, "", None) is None


def test_every_row_of_the_table_names_its_twilio_source() -> None:
    assert {20003, 20429, 21211, 21610, 63016, 63018} <= set(CODES)
    for code, row in CODES.items():
        assert row.code == code and row.source == f"https://www.twilio.com/docs/api/errors/{code}"
        assert (row.outcome is Outcome.THROTTLE) == (row.scope is not None)


# -- configuration -------------------------------------------------------------------------


def test_missing_credentials_are_named_without_values() -> None:
    with pytest.raises(ConfigurationError) as caught:
        TwilioAdapter.from_settings(Settings(twilio_auth_token="hidden-token-value"))
    assert "RELAYQ_TWILIO_ACCOUNT_SID" in str(caught.value)
    assert "RELAYQ_TWILIO_AUTH_TOKEN" not in str(caught.value)
    assert "hidden-token-value" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="RELAYQ_TWILIO_ACCOUNT_SID, RELAYQ_TWILIO_AUTH"):
        TwilioAdapter.from_settings(Settings())


async def test_from_settings_and_a_shared_client_left_open(twilio: Twilio) -> None:
    thread, fake = twilio
    settings = Settings(
        twilio_api_url=thread.provider.base_url("/twilio"),
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from=FROM,
    )
    http = ProviderHttp(timeout=2.0)
    try:
        adapter = TwilioAdapter.from_settings(settings, http)
        assert (await adapter.deliver(_message())).provider_message_id
        await adapter.aclose()
        assert not http.session().closed  # the shared client stays open for its owner
    finally:
        await http.aclose()
    owned = TwilioAdapter.from_settings(settings)
    assert (await owned.deliver(_message())).provider_message_id
    await owned.aclose()
    await owned.aclose()  # idempotent
    assert [r.status for r in fake.requests] == [201, 201]
