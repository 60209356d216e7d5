"""The local Twilio fake speaks Twilio's Messages API: Twilio's own Python client, pointed
at it, creates and fetches messages and reads its errors as ``TwilioRestException`` with
the code; its validation, auth, faults and records follow the documentation; its status
callbacks are signed as Twilio signs them and can come out of order or twice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from relayq.ops.fake_http import Fault
from relayq.ops.local_provider import ProviderThread
from relayq.ops.receipt_signatures import TWILIO_HEADER, verify_twilio
from relayq.ops.twilio_fake import CallbackPlan, TwilioFake
from relayq.streams.redis_server import free_port
from tests.support import wait_until

SID = "AC" + "1" * 32
TOKEN = "twilio-test-token-7f3c"
FROM = "+15005550006"
TWILIO_API = "https://api.twilio.com"


@contextlib.contextmanager
def running_twilio(**options: Any) -> Iterator[tuple[ProviderThread, TwilioFake]]:
    """A local provider with a TwilioFake for account SID/TOKEN mounted at ``/twilio``."""
    fake = TwilioFake(account_sid=SID, auth_token=TOKEN, **options)
    thread = ProviderThread()
    fake.mount(thread.provider)
    with thread:
        try:
            yield thread, fake
        finally:
            fake.close()


@pytest.fixture
def twilio() -> Iterator[tuple[ProviderThread, TwilioFake]]:
    with running_twilio() as running:
        yield running


@contextlib.asynccontextmanager
async def callback_receiver(token: str) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An aiohttp server on 127.0.0.1 taking status callbacks at ``/receipts?tag=1``: each
    must carry a valid X-Twilio-Signature (else 403); yields its URL and the params it
    accepted (plus ``url``: the URL each was posted to)."""
    received: list[dict[str, str]] = []

    async def receive(request: web.Request) -> web.Response:
        params = {name: str(value) for name, value in (await request.post()).items()}
        if not verify_twilio(token, str(request.url), params, request.headers.get(TWILIO_HEADER)):
            return web.Response(status=403)
        received.append(params | {"url": str(request.url)})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/receipts", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/receipts?tag=1", received
    finally:
        await runner.cleanup()


async def until(predicate: Any, message: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(0.02)


# -- Twilio's official client against the fake --------------------------------------------


class LocalTwilioHttpClient(TwilioHttpClient):  # type: ignore[misc]  # untyped library
    """The official client's HTTP client, sending what it addresses to api.twilio.com to
    the fake instead (the client has no base-URL option; its maintainers suggest this)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self.base_url + url.removeprefix(TWILIO_API)
        return super().request(method, url, *args, **kwargs)


def official_client(thread: ProviderThread, token: str = TOKEN) -> Client:
    return Client(
        SID, token, http_client=LocalTwilioHttpClient(thread.provider.base_url("/twilio"))
    )


def test_the_official_client_creates_and_fetches_a_message(twilio: Any) -> None:
    thread, fake = twilio
    message = official_client(thread).messages.create(
        to="+15551230001", from_=FROM, body="hello", media_url=["https://example.com/a.png"]
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid or "")
    assert (message.status, message.to, message.from_, message.body) == (
        "queued",
        "+15551230001",
        FROM,
        "hello",
    )
    assert message.account_sid == SID and message.date_created is not None
    assert message.num_media == "1" and message.direction == "outbound-api"
    (request,) = fake.requests
    assert request.status == 201 and request.sid == message.sid
    assert request.field("To") == "+15551230001" and request.form["MediaUrl"] == [
        "https://example.com/a.png"
    ]
    fetched = official_client(thread).messages(message.sid).fetch()
    assert (fetched.sid, fetched.body) == (message.sid, "hello")


def test_the_client_s_base_url_attribute_works_too(twilio: Any) -> None:
    thread, _ = twilio
    client = Client(SID, TOKEN)
    client.api.base_url = thread.provider.base_url("/twilio")
    message = client.messages.create(
        to="+15551230002", messaging_service_sid="MG" + "2" * 32, body="x"
    )
    assert message.status == "accepted" and message.from_ is None
    assert message.messaging_service_sid == "MG" + "2" * 32


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault(match="recipient", value="+15551230003", code="21211"), 400, 21211),
        (Fault(match="recipient", value="+15551230003", code="21610"), 400, 21610),
        (Fault(match="recipient", value="+15551230003", code="63016"), 400, 63016),
        (Fault(match="sender", value=FROM, code="63018"), 429, 63018),
        (Fault(code="20429"), 429, 20429),
        (Fault(status=503), 503, 503),
    ],
)
def test_the_official_client_reads_the_fake_s_errors(
    twilio: Any, fault: Fault, status: int, code: int
) -> None:
    thread, fake = twilio
    fake.faults.add(fault)
    with pytest.raises(TwilioRestException) as caught:
        official_client(thread).messages.create(to="+15551230003", from_=FROM, body="hi")
    assert (caught.value.status, caught.value.code) == (status, code)


def test_a_wrong_auth_token_is_20003_for_the_official_client(twilio: Any) -> None:
    thread, fake = twilio
    with pytest.raises(TwilioRestException) as caught:
        official_client(thread, token="wrong").messages.create(
            to="+15551230004", from_=FROM, body="x"
        )
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert "Authenticate" in caught.value.msg
    assert fake.requests[0].status == 401


def test_validation_errors_reach_the_official_client_with_their_codes(twilio: Any) -> None:
    thread, _ = twilio
    client = official_client(thread)
    cases = [
        ({"to": "+15551230005", "from_": FROM}, 21602),
        ({"to": "+15551230005", "body": "x"}, 21603),
        ({"to": "555-1234", "from_": FROM, "body": "x"}, 21211),
    ]
    for arguments, code in cases:
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(**arguments)
        assert (caught.value.status, caught.value.code) == (400, code), arguments


# -- the fake over plain HTTP --------------------------------------------------------------


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{SID}:{token}".encode()).decode()}


async def _create(
    thread: ProviderThread, form: dict[str, str] | list[tuple[str, str]], token: str = TOKEN
) -> tuple[int, dict[str, str], Any]:
    url = thread.provider.base_url(f"/twilio/2010-04-01/Accounts/{SID}/Messages.json")
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=_auth(token)) as reply,
    ):
        headers = {name.lower(): value for name, value in reply.headers.items()}
        return reply.status, headers, await reply.json(content_type=None)


async def test_a_missing_to_is_21604_even_when_the_body_is_json(twilio: Any) -> None:
    thread, _ = twilio
    url = thread.provider.base_url(f"/twilio/2010-04-01/Accounts/{SID}/Messages.json")
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"To": "+15551230006"}, headers=_auth()) as reply,
    ):
        assert reply.status == 400
        assert (await reply.json())["code"] == 21604


async def test_error_bodies_have_twilio_s_fields(twilio: Any) -> None:
    thread, _ = twilio
    status, _, body = await _create(thread, {"To": "+15551230007", "From": FROM})
    assert status == 400
    assert body == {
        "code": 21602,
        "message": "Message body is required.",
        "more_info": "https://www.twilio.com/docs/errors/21602",
        "status": 400,
    }


async def test_faults_over_http_with_retry_after_and_reset(twilio: Any) -> None:
    thread, _ = twilio
    rules = b'[{"code": "20429", "retry_after": 7, "times": 1}, {"reset": true, "times": 1}]'
    async with (
        aiohttp.ClientSession() as session,
        session.post(thread.provider.base_url("/twilio/_faults"), data=rules) as reply,
    ):
        assert (await reply.json())["rules"] == 2
    status, headers, body = await _create(thread, {"To": "+15551230008", "From": FROM, "Body": "x"})
    assert (status, headers.get("retry-after"), body["code"]) == (429, "7", 20429)
    with pytest.raises(aiohttp.ClientError):
        await _create(thread, {"To": "+15551230008", "From": FROM, "Body": "x"})
    status, _, _ = await _create(thread, {"To": "+15551230008", "From": FROM, "Body": "x"})
    assert status == 201


async def test_every_request_is_recorded_and_listed(twilio: Any) -> None:
    thread, _ = twilio
    await _create(thread, [("To", "+15551230009"), ("From", FROM), ("Body", "a")], token="bad")
    await _create(thread, [("To", "+15551230009"), ("From", FROM), ("Body", "b")])
    async with (
        aiohttp.ClientSession() as session,
        session.get(thread.provider.base_url("/twilio/_requests")) as reply,
    ):
        listed = await reply.json()
    assert [(item["status"], item["form"]["Body"]) for item in listed] == [
        (401, ["a"]),
        (201, ["b"]),
    ]


async def test_a_wrong_account_in_the_url_is_refused(twilio: Any) -> None:
    thread, _ = twilio
    other = "AC" + "9" * 32
    url = thread.provider.base_url(f"/twilio/2010-04-01/Accounts/{other}/Messages.json")
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data={"To": "+1555", "From": FROM, "Body": "x"}, headers=_auth()) as r,
    ):
        assert (r.status, (await r.json())["code"]) == (401, 20003)


# -- status callbacks ----------------------------------------------------------------------


async def test_callbacks_are_signed_over_the_exact_url_and_params() -> None:
    async with callback_receiver(TOKEN) as (url, received):
        with running_twilio() as (thread, fake):
            form = {"To": "+15551230010", "From": FROM, "Body": "x", "StatusCallback": url}
            status, _, created = await _create(thread, form)
            assert status == 201
            await until(lambda: len(fake.callbacks) == 2, "two callbacks")
    assert [p["MessageStatus"] for p in received] == ["sent", "delivered"]
    assert all(p["MessageSid"] == p["SmsSid"] == created["sid"] for p in received)
    assert all(p["AccountSid"] == SID and p["From"] == FROM for p in received)
    assert all(callback.status == 204 and callback.url == url for callback in fake.callbacks)


async def test_a_forged_callback_is_what_the_receiver_refuses() -> None:
    async with callback_receiver("another-token") as (url, received):
        with running_twilio() as (thread, fake):
            await _create(
                thread, {"To": "+15551230011", "From": FROM, "Body": "x", "StatusCallback": url}
            )
            await until(lambda: len(fake.callbacks) == 2, "two callbacks")
    assert received == [] and [c.status for c in fake.callbacks] == [403, 403]


async def test_callbacks_can_fail_with_a_code_come_out_of_order_and_twice() -> None:
    plan = CallbackPlan(
        statuses=["sent", "delivered", "read"], shuffle=True, duplicates=1, seed=3, delay=0
    )
    failing = CallbackPlan(statuses=["sent", "failed"], error_code=63016, delay=0)
    async with callback_receiver(TOKEN) as (url, received):
        with running_twilio(callback_plan=plan) as (thread, fake):
            fake.callback_plans["+15551230013"] = failing
            for to in ("+15551230012", "+15551230013"):
                await _create(thread, {"To": to, "From": FROM, "Body": "x", "StatusCallback": url})
            await until(lambda: len(fake.callbacks) == 8, "eight callbacks")
    first = [p["MessageStatus"] for p in received if p["To"] == "+15551230012"]
    assert sorted(first) == ["delivered", "delivered", "read", "read", "sent", "sent"]
    assert first != ["sent", "sent", "delivered", "delivered", "read", "read"]
    second = [
        (p["MessageStatus"], p.get("ErrorCode")) for p in received if p["To"] == "+15551230013"
    ]
    assert second == [("sent", None), ("failed", "63016")]


async def test_stop_cancels_callbacks_still_to_come() -> None:
    async with callback_receiver(TOKEN) as (url, received):
        with running_twilio(callback_plan=CallbackPlan(delay=30)) as (thread, fake):
            await _create(
                thread, {"To": "+15551230014", "From": FROM, "Body": "x", "StatusCallback": url}
            )
        assert received == [] and fake.callbacks == []


def test_status_callback_query_is_kept_verbatim_for_signing(twilio: Any) -> None:
    thread, fake = twilio
    url = "http://127.0.0.1:9/receipts?b=2&a=1"
    fake.callback_plan = CallbackPlan(statuses=["sent"], delay=0)
    official_client(thread).messages.create(
        to="+15551230015", from_=FROM, body="x", status_callback=url
    )
    wait_until(lambda: fake.callbacks, timeout=5, message="callback attempted")
    (callback,) = fake.callbacks
    assert callback.url == url and callback.status == 0  # nothing listens on port 9
    assert urllib.parse.urlsplit(callback.url).query == "b=2&a=1"
