"""Delivery receipts end to end (issue 15, item 5): a real ``relayq worker`` delivers
WhatsApp and Twilio messages to the providers' fakes, which fire their signed status
callbacks at a real ``relayq api``; the outcome records end at the furthest receipt (read
for WhatsApp, delivered for Twilio) and each step is an event, whatever order and however
often the callbacks come; a failed-after-accept callback (131026) marks the message
failed with Meta's error; a receipt that beats the worker's acknowledgement is kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from relayq.ops.fake_http import Fault
from relayq.ops.receipt_signatures import WHATSAPP_HEADER, whatsapp_signature
from relayq.ops.twilio_fake import CallbackPlan as TwilioPlan
from relayq.ops.whatsapp_fake import CallbackPlan as WhatsAppPlan
from relayq.ops.whatsapp_fake import RecordedRequest
from relayq.producers import SendRequest, SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeRecord
from relayq.streams.receipts import RANKED_STATUSES
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.channel_support import (
    PHONE_ID,
    TWILIO_AUTH_TOKEN,
    Fakes,
    channel_settings,
    record_of,
    running_fakes,
    start_channel_worker,
)
from tests.support import WorkerPool, send_all, wait_until

APP_SECRET = "meta-app-secret-e2e"
WHATSAPP_RECEIPTS = "/v1/receipts/whatsapp"
TWILIO_RECEIPTS = "/v1/receipts/twilio"
CHANNELS = "whatsapp=whatsapp,sms=twilio"
IN_ORDER = "in order"
SCRAMBLED = "out of order, duplicated"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API's settings: both providers' receipt secrets (the Twilio auth token is the
    one the worker sends with, as on a real account)."""
    return settings.replace(whatsapp_app_secret=APP_SECRET, twilio_auth_token=TWILIO_AUTH_TOKEN)


def _plans(api: ApiServer, order: str) -> tuple[WhatsAppPlan, TwilioPlan]:
    scrambled = order == SCRAMBLED
    whatsapp = WhatsAppPlan(
        url=api.url + WHATSAPP_RECEIPTS,
        app_secret=APP_SECRET,
        out_of_order=scrambled,
        duplicate=scrambled,
        delay=0.01,
    )
    twilio = TwilioPlan(shuffle=scrambled, duplicates=2 if scrambled else 0, seed=7)
    return whatsapp, twilio


def _worker_settings(settings: Settings, fakes: Fakes, api: ApiServer) -> Settings:
    return channel_settings(
        settings, fakes, CHANNELS, twilio_status_callback=api.url + TWILIO_RECEIPTS
    )


def _send(settings: Settings, channel: str, recipients: list[str]) -> list[str]:
    payload = {"text": "hi"} if channel == "whatsapp" else {"body": "hi"}
    requests = [
        SendRequest(tenant="acme", conversation=f"{channel}-{n}", recipient=to,
                    payload=payload, channel=channel)
        for n, to in enumerate(recipients)
    ]  # fmt: skip
    sent = send_all(settings, requests)
    return [sent[("acme", r.conversation)][0] for r in requests]


def _receipt_is(client: redis.Redis, keys: Keys, ids: list[str], receipt: str) -> None:
    def reached() -> bool:
        records = [record_of(client, keys, message_id) for message_id in ids]
        return all(r is not None and r.receipt == receipt for r in records)

    wait_until(reached, timeout=20, message=f"{ids} reach receipt {receipt}")


def _receipt_events(settings: Settings) -> dict[str, list[str | None]]:
    """Message id -> its receipt events' statuses, in the order published."""
    found: dict[str, list[str | None]] = {}
    with SyncProducer(settings) as producer:
        for event in producer.events(after="start", follow=False):
            if event.state == "receipt":
                found.setdefault(event.message_id, []).append(event.record.receipt)
    return found


def _delivered_record(client: redis.Redis, keys: Keys, message_id: str) -> OutcomeRecord:
    record = record_of(client, keys, message_id)
    assert record is not None and record.state == "delivered", record
    return record


@pytest.fixture
def fakes_for(api_server: ApiServer, request: pytest.FixtureRequest) -> Iterator[Fakes]:
    """The fakes firing callbacks at the API, in the order the test's param names."""
    whatsapp, twilio = _plans(api_server, request.param)
    with running_fakes(whatsapp_callbacks=whatsapp, twilio_plan=twilio) as fakes:
        yield fakes


@pytest.mark.parametrize("fakes_for", [IN_ORDER, SCRAMBLED], indirect=True)
def test_callbacks_end_at_the_furthest_receipt_with_one_event_per_step(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    api_server: ApiServer,
    fakes_for: Fakes,
) -> None:
    fakes = fakes_for
    worker_settings = _worker_settings(settings, fakes, api_server)
    chats = _send(worker_settings, "whatsapp", ["+15550101", "+15550102"])
    texts = _send(worker_settings, "sms", ["+15550201", "+15550202"])
    start_channel_worker(workers, worker_settings, burst=True)

    _receipt_is(redis_client, keys, chats, "read")
    _receipt_is(redis_client, keys, texts, "delivered")
    wait_until(lambda: len(fakes.whatsapp.sent_callbacks) == 2 * _whatsapp_callbacks(fakes),
               timeout=10, message="every WhatsApp webhook sent")  # fmt: skip
    wait_until(lambda: len(fakes.twilio.callbacks) == 2 * _twilio_callbacks(fakes),
               timeout=10, message="every Twilio callback sent")  # fmt: skip
    assert {sent.answer for sent in fakes.whatsapp.sent_callbacks} == {200}
    assert {callback.status for callback in fakes.twilio.callbacks} == {200}
    sent = {r.biz_opaque_callback_data: r.wamid for r in fakes.whatsapp.requests}
    for message_id in chats:
        assert (
            _delivered_record(redis_client, keys, message_id).provider_message_id
            == sent[message_id]
        )
    events = _receipt_events(settings)
    for message_id, furthest in [*((m, "read") for m in chats), *((m, "delivered") for m in texts)]:
        steps = events[message_id]
        ranks = [RANKED_STATUSES.index(step or "") for step in steps]
        assert ranks == sorted(set(ranks)) and steps[-1] == furthest, steps
    if fakes.whatsapp.callbacks is not None and fakes.whatsapp.callbacks.out_of_order:
        assert [events[m] for m in chats] == [["read"], ["read"]]  # the rest moved nothing
    else:
        assert [events[m] for m in chats] == [["sent", "delivered", "read"]] * 2
        assert [events[m] for m in texts] == [["sent", "delivered"]] * 2


def _whatsapp_callbacks(fakes: Fakes) -> int:
    plan = fakes.whatsapp.callbacks
    assert plan is not None
    return len(plan.sequence(None))


def _twilio_callbacks(fakes: Fakes) -> int:
    plan = fakes.twilio.callback_plan
    return len(plan.statuses) * (1 + plan.duplicates)


@pytest.mark.parametrize("fakes_for", [IN_ORDER], indirect=True)
def test_a_failed_after_accept_webhook_marks_the_message_failed_with_metas_error(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    api_server: ApiServer,
    fakes_for: Fakes,
) -> None:
    fakes = fakes_for
    fakes.whatsapp.faults.add(
        Fault(match="recipient", value="+15550199", code="131026", status=200)
    )
    worker_settings = _worker_settings(settings, fakes, api_server)
    (failed,) = _send(worker_settings, "whatsapp", ["+15550199"])
    start_channel_worker(workers, worker_settings, burst=True)

    _receipt_is(redis_client, keys, [failed], "failed")
    record = _delivered_record(redis_client, keys, failed)  # relayq's own state stays
    assert record.error is not None and "131026" in record.error, record
    assert "undeliverable" in record.error.lower(), record
    assert _receipt_events(settings)[failed] == ["failed"]


def _early_receipt(fakes: Fakes, message_id: str, status: str) -> bytes:
    """The webhook Meta would send for ``message_id`` (as the fake writes it)."""
    sent = RecordedRequest(
        method="POST",
        path=f"/whatsapp/v21.0/{PHONE_ID}/messages",
        arrived_ns=0,
        phone_number_id=PHONE_ID,
        to="+15550300",
        biz_opaque_callback_data=message_id,
        wamid="wamid.EARLY",
    )
    return fakes.whatsapp.notification(sent, status)


def test_a_receipt_that_beats_the_acknowledgement_is_kept_in_the_delivered_record(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    api_server: ApiServer,
) -> None:
    with running_fakes() as fakes:  # no callbacks of its own: only the early one
        worker_settings = _worker_settings(settings, fakes, api_server)
        (message_id,) = _send(worker_settings, "whatsapp", ["+15550300"])
        body = _early_receipt(fakes, message_id, "delivered")
        answer = _post(api_server, body)
        assert answer.status_code == 200 and answer.json()["applied"] == 1, answer.text
        queued = record_of(redis_client, keys, message_id)
        assert queued is not None and (queued.state, queued.receipt) == ("accepted", "delivered")

        worker = start_channel_worker(workers, worker_settings, burst=True)
        assert worker.wait(timeout=60) == 0, worker.log_tail()

    record = _delivered_record(redis_client, keys, message_id)
    assert record.receipt == "delivered" and record.receipt_ms is not None, record
    (sent,) = fakes.whatsapp.requests
    assert record.provider_message_id == sent.wamid  # the send's own id, not the receipt's
    assert _receipt_events(settings)[message_id] == ["delivered"]


def _post(api: ApiServer, body: bytes) -> httpx.Response:
    headers: dict[str, Any] = {
        "Content-Type": "application/json",
        WHATSAPP_HEADER: whatsapp_signature(APP_SECRET, body),
    }
    return api.call("POST", WHATSAPP_RECEIPTS, key="", content=body, headers=headers)
