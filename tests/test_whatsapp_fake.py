"""The fake WhatsApp Cloud API speaks Meta's documented formats: the send-message request
and its answer, Graph error bodies with the documented HTTP status per code, 401 code 190 for
a wrong token, 400 code 100 for a malformed request, faults by recipient or sender, and
status webhooks signed with X-Hub-Signature-256 (in order, out of order, duplicated, or a
``failed`` after an accepted send). Talked to with a plain aiohttp client, not relayq's."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from relayq.ops.fake_http import Fault
from relayq.ops.local_provider import LocalProvider
from relayq.ops.receipt_signatures import WHATSAPP_HEADER, verify_whatsapp
from relayq.ops.whatsapp_fake import CallbackPlan, RecordedRequest, WhatsAppFake
from relayq.streams.redis_server import free_port

TOKEN = "EAAGfake-token-for-the-fake"
APP_SECRET = "app-secret-0123"
PHONE_ID = "106540352242922"


def _send_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"body": "hello"},
        "biz_opaque_callback_data": "relayq-id-1",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@dataclasses.dataclass
class Client:
    """An aiohttp client for the fake on a local provider in the test's loop."""

    provider: LocalProvider
    fake: WhatsAppFake
    session: aiohttp.ClientSession

    async def post(
        self,
        body: object,
        *,
        token: str | None = TOKEN,
        phone: str = PHONE_ID,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        url = self.provider.base_url(f"/whatsapp/v21.0/{phone}/messages")
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else msgspec.json.encode(body)
        async with self.session.post(url, data=data, headers=headers) as response:
            return response.status, dict(response.headers), await response.json()


@dataclasses.dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what arrives."""

    url: str
    received: list[tuple[str | None, bytes]] = dataclasses.field(default_factory=list)

    def statuses(self) -> list[dict[str, Any]]:
        found = []
        for _signature, body in self.received:
            for entry in msgspec.json.decode(body)["entry"]:
                for change in entry["changes"]:
                    found += change["value"]["statuses"]
        return found

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} webhooks"
            await asyncio.sleep(0.02)


async def _start(fake: WhatsAppFake) -> tuple[LocalProvider, aiohttp.ClientSession]:
    provider = await LocalProvider().start()
    fake.mount(provider)
    return provider, aiohttp.ClientSession()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    caught = Receiver(url="")

    async def keep(request: web.Request) -> web.Response:
        caught.received.append((request.headers.get(WHATSAPP_HEADER), await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", keep)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    caught.url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
    try:
        yield caught
    finally:
        await runner.cleanup()


async def _client(fake: WhatsAppFake) -> AsyncIterator[Client]:
    provider, session = await _start(fake)
    try:
        yield Client(provider, fake, session)
    finally:
        await session.close()
        await fake.stop()
        await provider.stop()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async for made in _client(WhatsAppFake(token=TOKEN, phone_number_ids=frozenset({PHONE_ID}))):
        yield made


@pytest.fixture
def plan(receiver: Receiver) -> CallbackPlan:
    return CallbackPlan(url=receiver.url, app_secret=APP_SECRET)


# -- the send-message endpoint ----------------------------------------------------------------


async def test_an_accepted_send_is_answered_as_meta_documents(client: Client) -> None:
    status, _headers, answer = await client.post(_send_body())
    assert status == 200
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    assert answer == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": wamid}],
    }
    (request,) = client.fake.requests
    assert (request.phone_number_id, request.to, request.type, request.status) == (
        PHONE_ID,
        "+16505551234",
        "text",
        200,
    )
    assert request.biz_opaque_callback_data == "relayq-id-1" and request.wamid == wamid
    assert request.authorized


async def test_wamids_are_unique(client: Client) -> None:
    ids = {(await client.post(_send_body()))[2]["messages"][0]["id"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("token", ["EAAGsomeone-else", None])
async def test_a_wrong_or_missing_token_is_a_401_with_code_190(
    client: Client, token: str | None
) -> None:
    status, _headers, answer = await client.post(_send_body(), token=token)
    assert status == 401
    error = answer["error"]
    assert (error["code"], error["type"]) == (190, "OAuthException")
    assert error["message"] and error["fbtrace_id"]
    assert client.fake.requests[0].authorized is False
    assert client.fake.requests[0].status == 401


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        (None, b"{not json"),
        (None, b'["a list"]'),
        (_send_body(messaging_product=None), None),
        (_send_body(messaging_product="sms"), None),
        (_send_body(to=None), None),
        (_send_body(to=""), None),
        (_send_body(recipient_type="crowd"), None),
        (_send_body(type="fax", fax={}), None),
        (_send_body(text=None), None),
        (_send_body(text={"preview_url": True}), None),
        (_send_body(type="template", text=None, template={"language": {"code": "en"}}), None),
        (_send_body(type="image", text=None, image={"caption": "no link"}), None),
    ],
)
async def test_a_malformed_request_is_a_400_with_code_100(
    client: Client, body: object, raw: bytes | None
) -> None:
    status, _headers, answer = await client.post(body, raw=raw)
    assert status == 400
    assert answer["error"]["code"] == 100
    assert answer["error"]["error_data"]["details"]
    assert client.fake.requests[0].error_code == 100


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "template", "text": None, "template": {"name": "x", "language": {"code": "en"}}},
        {"type": "document", "text": None, "document": {"id": "123"}},
        {"type": None},  # text is the default type
        {"context": {"message_id": "wamid.A"}},
    ],
)
async def test_well_formed_messages_of_other_types_are_accepted(
    client: Client, changes: dict[str, Any]
) -> None:
    status, _headers, _answer = await client.post(_send_body(**changes))
    assert status == 200


async def test_an_unknown_phone_number_id_is_a_400_with_subcode_33(client: Client) -> None:
    status, _headers, answer = await client.post(_send_body(), phone="999")
    assert status == 400
    assert (answer["error"]["code"], answer["error"]["error_subcode"]) == (100, 33)


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [(131056, 400), (130429, 400), (131026, 400), (131000, 500), (2, 503), (190, 401)],
)
async def test_a_code_is_answered_with_metas_body_and_documented_status(
    client: Client, code: int, status: int
) -> None:
    client.fake.faults.add(Fault(code=str(code)))
    answered, headers, answer = await client.post(_send_body())
    assert answered == status
    error = answer["error"]
    assert error["code"] == code
    assert error["message"].startswith(f"(#{code}) ")
    assert error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"] and error["fbtrace_id"]
    assert "Retry-After" not in headers
    assert client.fake.requests[0].error_code == code


async def test_a_fault_may_override_the_status_and_add_retry_after(client: Client) -> None:
    client.fake.faults.add(Fault(code="131056", status=429, retry_after=6))
    status, headers, answer = await client.post(_send_body())
    assert (status, headers["Retry-After"], answer["error"]["code"]) == (429, "6", 131056)


async def test_a_status_alone_has_no_meta_code(client: Client) -> None:
    client.fake.faults.add(Fault(status=503, retry_after=2))
    status, headers, answer = await client.post(_send_body())
    assert (status, headers["Retry-After"]) == (503, "2")
    assert answer == {"error": "HTTP 503"}


async def test_faults_match_recipient_or_sender_and_never_tenant(client: Client) -> None:
    client.fake.faults.add(
        Fault(match="tenant", value="acme", code="131000"),
        Fault(match="recipient", value="+16505550000", code="131026"),
        Fault(match="sender", value=PHONE_ID, code="130429", times=1),
    )
    assert (await client.post(_send_body(to="+16505550000")))[0] == 400  # the recipient rule
    status, _headers, answer = await client.post(_send_body())
    assert (status, answer["error"]["code"]) == (400, 130429)  # the sender rule, once
    assert (await client.post(_send_body()))[0] == 200  # and no tenant rule ever


async def test_a_reset_and_a_timeout(client: Client) -> None:
    client.fake.faults.add(Fault(reset=True, times=1), Fault(timeout=0.3, times=1))
    with pytest.raises(aiohttp.ClientError):
        await client.post(_send_body())
    started = time.monotonic()
    assert (await client.post(_send_body()))[0] == 200
    assert time.monotonic() - started >= 0.3
    assert [r.status for r in client.fake.requests] == [0, 200]


async def test_faults_and_requests_over_http(client: Client) -> None:
    faults_url = client.provider.base_url("/whatsapp/_faults")
    rules = [{"match": "recipient", "value": "+16505551234", "code": "131047"}]
    async with client.session.post(faults_url, json=rules) as response:
        assert (response.status, await response.json()) == (200, {"rules": 1})
    assert (await client.post(_send_body()))[2]["error"]["code"] == 131047
    async with client.session.delete(faults_url) as response:
        assert response.status == 200
    assert (await client.post(_send_body()))[0] == 200
    async with client.session.get(client.provider.base_url("/whatsapp/_requests")) as response:
        recorded = msgspec.json.decode(await response.read(), type=list[RecordedRequest])
    assert [(r.status, r.error_code) for r in recorded] == [(400, 131047), (200, None)]
    assert recorded[0].message == _send_body()


async def test_latency_holds_every_answer() -> None:
    async for client in _client(WhatsAppFake(token=TOKEN, latency=0.2)):
        started = time.monotonic()
        await asyncio.gather(*(client.post(_send_body()) for _ in range(5)))
        assert 0.2 <= time.monotonic() - started < 1.5  # held concurrently, not in turn


# -- status webhooks ----------------------------------------------------------------------------


async def test_status_webhooks_arrive_signed_in_order(
    receiver: Receiver, plan: CallbackPlan
) -> None:
    async for client in _client(WhatsAppFake(token=TOKEN, callbacks=plan)):
        _status, _headers, answer = await client.post(_send_body())
        wamid = answer["messages"][0]["id"]
        await receiver.wait_for(3)
    for signature, body in receiver.received:
        assert verify_whatsapp(APP_SECRET, body, signature)
        assert not verify_whatsapp("another-secret", body, signature)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "delivered", "read"]
    notification = msgspec.json.decode(receiver.received[0][1])
    assert notification["object"] == "whatsapp_business_account"
    (entry,) = notification["entry"]
    (change,) = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PHONE_ID
    assert value["metadata"]["display_phone_number"]
    (status,) = value["statuses"]
    assert status["id"] == wamid
    assert status["recipient_id"] == "16505551234"
    assert status["biz_opaque_callback_data"] == "relayq-id-1"
    assert status["timestamp"].isdigit()
    assert "errors" not in status


async def test_status_webhooks_out_of_order_and_duplicated(
    receiver: Receiver, plan: CallbackPlan
) -> None:
    plan = msgspec.structs.replace(plan, out_of_order=True, duplicate=True)
    async for client in _client(WhatsAppFake(token=TOKEN, callbacks=plan)):
        await client.post(_send_body())
        await receiver.wait_for(6)
        assert [c.answer for c in client.fake.sent_callbacks] == [200] * 6
    assert [s["status"] for s in receiver.statuses()] == [
        "read",
        "read",
        "delivered",
        "delivered",
        "sent",
        "sent",
    ]


async def test_a_2xx_code_fault_accepts_then_reports_failed(
    receiver: Receiver, plan: CallbackPlan
) -> None:
    async for client in _client(WhatsAppFake(token=TOKEN, callbacks=plan)):
        client.fake.faults.add(
            Fault(match="recipient", value="+16505551234", code="131026", status=200)
        )
        status, _headers, answer = await client.post(_send_body())
        assert status == 200 and answer["messages"][0]["id"].startswith("wamid.")
        await receiver.wait_for(1)
    (failed,) = receiver.statuses()
    assert failed["status"] == "failed"
    (error,) = failed["errors"]
    assert error["code"] == 131026
    assert error["title"] and error["message"] and error["error_data"]["details"]


async def test_stop_cancels_webhooks_still_waiting(receiver: Receiver, plan: CallbackPlan) -> None:
    plan = msgspec.structs.replace(plan, delay=30.0)
    fake = WhatsAppFake(token=TOKEN, callbacks=plan)
    provider, session = await _start(fake)
    try:
        assert (await Client(provider, fake, session).post(_send_body()))[0] == 200
    finally:
        await session.close()
        started = time.monotonic()
        await fake.stop(grace=0.1)
        await provider.stop()
    assert time.monotonic() - started < 2.0
    assert receiver.received == [] and fake.sent_callbacks == []
