"""The WhatsApp Cloud API adapter against the fake Cloud API on the local provider: what it
sends for each payload format, and what each documented answer becomes: the wamid on
success; Meta's throttling codes throttle only the sender (130429) or the recipient
(131056); transient codes retry; permanent codes dead-letter with ``whatsapp_<code>``; 190
takes the channel down; bare 429/5xx/timeouts/resets follow the HTTP status. The access
token appears in no error, repr or log line."""

from __future__ import annotations

import dataclasses
import itertools
import os
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
import structlog
from aiohttp import web

from relayq.consumers.adapters.whatsapp_cloud import WhatsAppAdapter
from relayq.consumers.adapters.whatsapp_codes import CODES, Outcome
from relayq.ops.fake_http import Fault
from relayq.ops.local_provider import LocalProvider, ProviderThread
from relayq.ops.whatsapp_fake import RecordedRequest, WhatsAppFake
from relayq.producers import SyncProducer
from relayq.streams.codec import decode_entry
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
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings
from tests.support import WorkerPool, dead_letters

TOKEN = "EAAGtest-Secret-Token-9f8e7d6c5b4a"
PHONE_ID = "106540352242922"
OTHER_PHONE_ID = "106540352242999"
REPOSITORY = str(Path(__file__).resolve().parent.parent)

_ids = itertools.count(1)

worker_adapter = WhatsAppAdapter.from_settings
"""``RELAYQ_DELIVERER=tests.test_whatsapp_adapter:worker_adapter`` (a worker's factory)."""


def _message(
    payload: object = None, *, recipient: str = "+15550001", sender: str | None = None
) -> Message:
    body = {"text": "hello"} if payload is None else payload
    return Message(
        id=f"m-{next(_ids)}",
        tenant="acme",
        conversation="c-1",
        recipient=recipient,
        priority="normal",
        payload=body if isinstance(body, bytes) else msgspec.json.encode(body),
        created_ms=1_700_000_000_000,
        sender=sender,
    )


@dataclasses.dataclass
class Rig:
    provider: LocalProvider
    fake: WhatsAppFake
    adapter: WhatsAppAdapter

    @property
    def api_url(self) -> str:
        return self.provider.base_url("/whatsapp") + "/v21.0"

    def adapter_with(self, token: str) -> WhatsAppAdapter:
        return WhatsAppAdapter(
            api_url=self.api_url, token=token, phone_number_id=PHONE_ID, timeout=0.5
        )

    async def refused(self, message: Message, adapter: WhatsAppAdapter | None = None) -> Any:
        """The error delivering ``message`` raises (the test fails if it is delivered)."""
        with pytest.raises(DeliveryError) as caught:
            await (adapter or self.adapter).deliver(message)
        return caught.value


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    provider = await LocalProvider().start()
    fake = WhatsAppFake(token=TOKEN, phone_number_ids=frozenset({PHONE_ID, OTHER_PHONE_ID}))
    fake.mount(provider)
    adapter = WhatsAppAdapter(
        api_url=provider.base_url("/whatsapp") + "/v21.0",
        token=TOKEN,
        phone_number_id=PHONE_ID,
        timeout=0.5,
    )
    try:
        yield Rig(provider, fake, adapter)
    finally:
        await adapter.aclose()
        await fake.stop()
        await provider.stop()


def _only_request(fake: WhatsAppFake) -> RecordedRequest:
    assert len(fake.requests) == 1, fake.requests
    return fake.requests[0]


# -- success --------------------------------------------------------------------------------


async def test_a_text_message_is_sent_and_its_wamid_returned(rig: Rig) -> None:
    message = _message({"text": "hello"})
    result = await rig.adapter.deliver(message)

    request = _only_request(rig.fake)
    assert isinstance(result, DeliveryResult)
    assert result.provider_message_id == request.wamid
    assert request.wamid is not None and request.wamid.startswith("wamid.")
    assert request.authorized and request.status == 200
    assert request.path == f"/whatsapp/v21.0/{PHONE_ID}/messages"
    assert request.message == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+15550001",
        "biz_opaque_callback_data": message.id,
        "type": "text",
        "text": {"body": "hello"},
    }


async def test_the_message_sender_is_the_phone_number_id(rig: Rig) -> None:
    await rig.adapter.deliver(_message(sender=OTHER_PHONE_ID))
    assert _only_request(rig.fake).phone_number_id == OTHER_PHONE_ID


_TEMPLATE = {
    "name": "order_update",
    "language": {"code": "en_US"},
    "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": "hi"}, {"type": "text", "text": {"body": "hi"}}),
        ({"text": {"body": "hi", "preview_url": True}}, {"type": "text", "text": {"body": "hi", "preview_url": True}}),  # noqa: E501
        ({"type": "text", "text": {"body": "hi"}}, {"type": "text", "text": {"body": "hi"}}),
        ({"type": "template", "template": _TEMPLATE}, {"type": "template", "template": _TEMPLATE}),
        *[
            ({"type": media, media: {"link": f"https://example.com/f.{media}"}},
             {"type": media, media: {"link": f"https://example.com/f.{media}"}})
            for media in ("image", "audio", "video", "document", "sticker")
        ],
        ({"type": "image", "image": {"id": "1234"}}, {"type": "image", "image": {"id": "1234"}}),
        ({"text": "re", "context": {"message_id": "wamid.X"}},
         {"type": "text", "text": {"body": "re"}, "context": {"message_id": "wamid.X"}}),
    ],
)  # fmt: skip
async def test_each_payload_format_becomes_a_cloud_api_message(
    rig: Rig, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    message = _message(payload)
    await rig.adapter.deliver(message)
    sent = _only_request(rig.fake).message
    assert sent is not None
    assert sent.pop("messaging_product") == "whatsapp"
    assert sent.pop("recipient_type") == "individual"
    assert sent.pop("to") == message.recipient
    assert sent.pop("biz_opaque_callback_data") == message.id
    assert sent == expected


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        ({}, "expected"),
        ({"body": "hi"}, "expected"),
        ({"text": 5}, "text must be a string or an object"),
        ({"type": "carrier_pigeon", "carrier_pigeon": {}}, "is not one of"),
        ({"type": "image"}, "needs an object under 'image'"),
        ({"type": "image", "image": "https://x"}, "needs an object under 'image'"),
        ({"type": 3, "text": {"body": "x"}}, "type must be a string"),
        ({"type": "text", "text": {"body": "x"}, "extra": 1}, "unexpected members extra"),
        ({"to": "+1555", "text": "x"}, "to are set by relayq"),
        ({"text": "x", "biz_opaque_callback_data": "y"}, "set by relayq"),
    ],
)
async def test_a_payload_it_cannot_send_is_permanent_and_never_sent(
    rig: Rig, payload: object, problem: str
) -> None:
    error = await rig.refused(_message(payload))
    assert isinstance(error, PermanentDeliveryError)
    assert error.kind == "invalid_payload"
    assert problem in error.reason
    assert rig.fake.requests == []


# -- Meta's codes ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [131000, 2, 1, 131016])
async def test_transient_codes_are_retryable(rig: Rig, code: int) -> None:
    rig.fake.faults.add(Fault(code=str(code)))
    error = await rig.refused(_message())
    assert type(error) is RetryableDeliveryError
    assert error.kind == f"whatsapp_{code}"
    assert f"whatsapp {code}" in error.reason


@pytest.mark.parametrize("code", [131026, 131047, 132000, 131008, 100, 131009, 132001])
async def test_permanent_codes_dead_letter_with_the_code_and_metas_message(
    rig: Rig, code: int
) -> None:
    rig.fake.faults.add(Fault(code=str(code)))
    error = await rig.refused(_message())
    assert isinstance(error, PermanentDeliveryError)
    assert error.kind == f"whatsapp_{code}"
    assert f"whatsapp {code} (HTTP " in error.reason
    assert f"(#{code})" in error.reason  # Meta's message, title included


async def test_throughput_130429_throttles_the_sender(rig: Rig) -> None:
    rig.fake.faults.add(Fault(match="sender", value=PHONE_ID, code="130429", retry_after=2))
    error = await rig.refused(_message())
    assert isinstance(error, ThrottledError)
    assert (error.scope, error.retry_after, error.kind) == (
        ThrottleScope.SENDER,
        2.0,
        "whatsapp_130429",
    )
    # Another sending number is not concerned.
    await rig.adapter.deliver(_message(sender=OTHER_PHONE_ID))
    rig.fake.faults.clear()
    rig.fake.faults.add(Fault(code="130429"))
    error = await rig.refused(_message())
    assert isinstance(error, ThrottledError) and error.retry_after == 1.0  # no header: 1 s


async def test_pair_rate_131056_throttles_only_that_recipient_for_6_seconds(rig: Rig) -> None:
    rig.fake.faults.add(Fault(match="recipient", value="+15550009", code="131056"))
    error = await rig.refused(_message(recipient="+15550009"))
    assert isinstance(error, ThrottledError)
    assert (error.scope, error.retry_after) == (ThrottleScope.RECIPIENT, 6.0)
    await rig.adapter.deliver(_message(recipient="+15550001"))


async def test_a_retry_after_header_overrides_the_pair_rate_default(rig: Rig) -> None:
    rig.fake.faults.add(Fault(code="131056", retry_after=1.5))
    error = await rig.refused(_message())
    assert isinstance(error, ThrottledError) and error.retry_after == 1.5


@pytest.mark.parametrize("code", [4, 80007])
async def test_account_call_limits_throttle_the_channel(rig: Rig, code: int) -> None:
    rig.fake.faults.add(Fault(code=str(code)))
    error = await rig.refused(_message())
    assert isinstance(error, ThrottledError)
    assert error.scope is ThrottleScope.CHANNEL and error.retry_after == 60.0


async def test_an_expired_token_190_takes_the_channel_down(rig: Rig) -> None:
    rig.fake.faults.add(Fault(code="190"))
    error = await rig.refused(_message())
    assert isinstance(error, ChannelDownError)
    assert error.kind == "whatsapp_190"
    assert "subcode 463" in error.reason


async def test_a_wrong_token_takes_the_channel_down(rig: Rig) -> None:
    adapter = rig.adapter_with("EAAGwrong-token")
    try:
        error = await rig.refused(_message(), adapter)
    finally:
        await adapter.aclose()
    assert isinstance(error, ChannelDownError) and error.kind == "whatsapp_190"
    assert not _only_request(rig.fake).authorized


# -- HTTP statuses and the transport ----------------------------------------------------------


async def test_a_bare_429_throttles_the_sender_with_its_retry_after(rig: Rig) -> None:
    rig.fake.faults.add(Fault(status=429, retry_after=3))
    error = await rig.refused(_message())
    assert isinstance(error, ThrottledError)
    assert (error.scope, error.retry_after, error.kind) == (
        ThrottleScope.SENDER,
        3.0,
        "whatsapp_http_429",
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, RetryableDeliveryError),
        (503, RetryableDeliveryError),
        (408, RetryableDeliveryError),
        (404, PermanentDeliveryError),
        (400, PermanentDeliveryError),
    ],
)
async def test_a_status_without_a_code_follows_the_status(
    rig: Rig, status: int, kind: type[DeliveryError]
) -> None:
    rig.fake.faults.add(Fault(status=status))
    error = await rig.refused(_message())
    assert type(error) is kind
    assert error.kind == f"whatsapp_http_{status}"


async def test_an_unknown_code_follows_the_status(rig: Rig) -> None:
    rig.fake.faults.add(Fault(code="999999", status=502, times=1))
    error = await rig.refused(_message())
    assert type(error) is RetryableDeliveryError and error.kind == "whatsapp_999999"
    rig.fake.faults.add(Fault(code="999998"))  # the fake's 400
    error = await rig.refused(_message())
    assert type(error) is PermanentDeliveryError and error.kind == "whatsapp_999998"


async def test_a_timeout_and_a_reset_are_retryable(rig: Rig) -> None:
    rig.fake.faults.add(Fault(timeout=1.5, times=1), Fault(reset=True, times=1))
    timed_out = await rig.refused(_message())
    assert isinstance(timed_out, RetryableDeliveryError) and timed_out.kind == "timeout"
    reset = await rig.refused(_message())
    assert isinstance(reset, RetryableDeliveryError) and reset.kind == "connection"
    await rig.adapter.deliver(_message())  # the rules are used up


async def test_a_2xx_without_a_wamid_is_delivered_without_an_id(rig: Rig) -> None:
    rig.fake.faults.add(Fault(status=200))  # the fake's bare body: no "messages"
    result = await rig.adapter.deliver(_message())
    assert result.provider_message_id is None


# -- the token stays secret -------------------------------------------------------------------


@pytest.fixture
async def echoing_server() -> AsyncIterator[str]:
    """A server that answers 400 with the request's Authorization header in Meta's error
    message, as a careless proxy might."""

    async def echo(request: web.Request) -> web.Response:
        leaked = request.headers.get("Authorization", "")
        body = {"error": {"message": f"bad header {leaked}", "code": 100}}
        return web.json_response(body, status=400, headers={"X-Echo": leaked})

    app = web.Application()
    app.router.add_post("/{phone}/messages", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_the_token_appears_in_no_error_repr_or_log(
    rig: Rig, echoing_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    rig.fake.faults.add(
        Fault(code="190", times=1),
        Fault(code="131026", times=1),
        Fault(code="130429", times=1),
        Fault(status=503, times=1),
        Fault(reset=True, times=1),
        Fault(status=200, times=1),
    )
    echoing = WhatsAppAdapter(api_url=echoing_server, token=TOKEN, phone_number_id=PHONE_ID)
    errors: list[BaseException] = []
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            errors.append(await rig.refused(_message()))
        await rig.adapter.deliver(_message())  # logs the missing wamid
        errors.append(await rig.refused(_message(), echoing))
        await echoing.aclose()
    assert [type(e) for e in errors] == [
        ChannelDownError,
        PermanentDeliveryError,
        ThrottledError,
        RetryableDeliveryError,
        RetryableDeliveryError,
        PermanentDeliveryError,
    ]
    assert "bad header Bearer ***" in str(errors[-1])
    assert logs, "the missing wamid should have been logged"
    texts = [str(logs), caplog.text, repr(rig.adapter), repr(echoing)]
    for error in errors:
        texts += [str(error), repr(error), getattr(error, "reason", ""), getattr(error, "kind", "")]
        texts += [repr(error.__cause__), repr(error.__context__)]
    leaked = [text for text in texts if TOKEN in text]
    assert leaked == []


# -- configuration ----------------------------------------------------------------------------


def test_from_settings_names_what_is_missing_and_never_a_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        WhatsAppAdapter.from_settings(Settings(whatsapp_token=TOKEN))
    assert "RELAYQ_WHATSAPP_PHONE_NUMBER_ID" in str(caught.value)
    assert "RELAYQ_WHATSAPP_TOKEN" not in str(caught.value)
    assert TOKEN not in str(caught.value)
    with pytest.raises(ConfigurationError, match="RELAYQ_WHATSAPP_TOKEN and RELAYQ_WHATSAPP_"):
        WhatsAppAdapter.from_settings(Settings())


async def test_from_settings_uses_the_settings(rig: Rig) -> None:
    settings = Settings(
        whatsapp_api_url=rig.api_url + "/",
        whatsapp_token=TOKEN,
        whatsapp_phone_number_id=OTHER_PHONE_ID,
    )
    adapter = WhatsAppAdapter.from_settings(settings)
    try:
        result = await adapter.deliver(_message())
    finally:
        await adapter.aclose()
    assert result.provider_message_id == _only_request(rig.fake).wamid
    assert _only_request(rig.fake).phone_number_id == OTHER_PHONE_ID
    assert TOKEN not in repr(adapter)


def test_every_code_names_its_source() -> None:
    for code, entry in CODES.items():
        assert entry.source.startswith("https://developers.facebook.com/"), code
        assert (entry.scope is not None) == (entry.outcome is Outcome.THROTTLE), code


# -- in a worker ------------------------------------------------------------------------------


@pytest.fixture
def provider_thread() -> Iterator[tuple[ProviderThread, WhatsAppFake]]:
    thread = ProviderThread()
    fake = WhatsAppFake(token=TOKEN)
    fake.mount(thread.provider)  # before start(): mount is a plain dict write
    with thread:
        yield thread, fake


def test_a_worker_delivers_dead_letters_and_throttles_by_code(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    provider_thread: tuple[ProviderThread, WhatsAppFake],
) -> None:
    thread, fake = provider_thread
    fake.faults.add(
        Fault(match="recipient", value="+15550002", code="131026"),
        Fault(match="recipient", value="+15550003", code="131056", retry_after=0.2, times=2),
    )
    settings = settings.replace(max_attempts=2)
    with SyncProducer(settings) as producer:
        ok, undeliverable, paired = (
            producer.send(tenant="acme", conversation=f"c-{n}", recipient=f"+1555000{n}",
                          payload={"text": f"hello {n}"})
            for n in (1, 2, 3)
        )  # fmt: skip

    worker = workers.start(
        "http://127.0.0.1:9/unused",
        burst=True,
        settings=settings,
        RELAYQ_DELIVERER="tests.test_whatsapp_adapter:worker_adapter",
        RELAYQ_WHATSAPP_API_URL=thread.provider.base_url("/whatsapp"),
        RELAYQ_WHATSAPP_TOKEN=TOKEN,
        RELAYQ_WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
        PYTHONPATH=os.pathsep.join(filter(None, [REPOSITORY, os.environ.get("PYTHONPATH")])),
    )
    assert worker.wait(timeout=60) == 0, worker.log_tail()

    with urllib.request.urlopen(thread.provider.base_url("/whatsapp/_requests"), timeout=10) as got:
        requests = msgspec.json.decode(got.read(), type=list[RecordedRequest])
    answered = {(r.biz_opaque_callback_data, r.status) for r in requests}
    assert (ok, 200) in answered and (paired, 200) in answered
    # 131056 twice with max_attempts=2: throttling used no attempt, so it was delivered.
    assert sum(r.biz_opaque_callback_data == paired for r in requests) == 3
    letters = dead_letters(redis_client, keys)
    assert [decode_entry({b"m": letter["entry:m"]}).id for letter in letters] == [undeliverable]
    # The dead letter holds Meta's code (as the error's kind) and its message.
    assert letters[0]["kind"] == b"permanent" and letters[0]["attempts"] == b"1"
    assert letters[0]["error"].startswith(
        b"whatsapp_131026: whatsapp 131026 (HTTP 400): (#131026) "
    )
    assert TOKEN not in worker.log_tail(1_000_000)
