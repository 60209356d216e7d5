"""Delivery receipts (issue 15, item 5): a real ``relayq api`` process, a real redis-server,
messages delivered by a real worker, and the providers' signed callbacks.

Valid callbacks update the record's receipt and publish one event each; out-of-order and
duplicate receipts keep the furthest status and publish nothing; forged or missing
signatures get 403 and change nothing; Meta's verification handshake; a failed receipt
after an accepted send keeps the provider's error; Twilio's form callbacks, signed over
the public callback URL or the request's own; without the provider's secret the endpoints
refuse; the record is edited as text, so 13-digit times and odd strings survive exactly.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from relayq import OutcomeEvent, SyncProducer
from relayq.ops.local_provider import ProviderThread
from relayq.ops.receipt_signatures import twilio_signature, whatsapp_signature
from relayq.ops.receipt_store import apply_receipts
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.outcome import decode_record, delivered_record
from relayq.streams.receipts import Receipt
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings
from tests.api_support import ApiServer, start_api_server
from tests.support import WorkerPool, wait_until

_APP_SECRET = "meta-app-secret-for-tests"
_VERIFY_TOKEN = "verify-me-please"
_AUTH_TOKEN = "twilio-auth-token-for-tests"
_PUBLIC_CALLBACK = "https://hooks.example.com/v1/receipts/twilio"
_WHATSAPP = "/v1/receipts/whatsapp"
_TWILIO = "/v1/receipts/twilio"
_TIMESTAMP = 1733212345  # seconds, as Meta sends it: receipt_ms 1733212345000 (13 digits)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared fast settings, with both providers' receipt secrets configured."""
    return settings.replace(
        whatsapp_app_secret=_APP_SECRET,
        whatsapp_verify_token=_VERIFY_TOKEN,
        twilio_auth_token=_AUTH_TOKEN,
        twilio_status_callback=_PUBLIC_CALLBACK,
    )


# -- helpers -------------------------------------------------------------------------------


def _delivered(
    settings: Settings, provider: ProviderThread, workers: WorkerPool, count: int
) -> list[str]:
    """``count`` messages sent and delivered by a real worker (burst); their ids."""
    with SyncProducer(settings) as producer:
        ids = [
            producer.send(tenant="acme", conversation=f"c{n}", recipient="+15550100", payload={})
            for n in range(count)
        ]
    workers.start(provider.url, burst=True, settings=settings)
    wait_until(
        lambda: len(provider.deliveries()) == count, timeout=30, message="messages delivered"
    )
    return ids


def _record(api: ApiServer, message_id: str) -> dict[str, Any]:
    """The record as ``GET /v1/messages/{id}`` shows it once it says delivered."""
    shown: dict[str, Any] = {}

    def delivered() -> bool:
        shown.update(api.call("GET", f"/v1/messages/{message_id}").json())
        return shown.get("state") == "delivered"

    wait_until(delivered, timeout=10, message=f"{message_id} recorded as delivered")
    record: dict[str, Any] = shown["record"]
    return record


def _stored(client: redis.Redis, keys: Keys, message_id: str) -> bytes:
    """The record's JSON as Redis holds it (whichever partition has it)."""
    for partition in range(keys.partitions):
        blob = client.hget(keys.outcomes(partition), message_id)
        if isinstance(blob, bytes):
            return blob
    raise AssertionError(f"no record of {message_id}")


def _receipt_events(settings: Settings) -> list[OutcomeEvent]:
    with SyncProducer(settings) as producer:
        events = producer.events(after="start", follow=False)
        return [event for event in events if event.state == "receipt"]


def _receipts_of(events: list[OutcomeEvent], message_id: str) -> list[str | None]:
    return [event.record.receipt for event in events if event.message_id == message_id]


def _status(message_id: str | None, status: str, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": f"wamid.{message_id}",
        "status": status,
        "timestamp": str(_TIMESTAMP),
        "recipient_id": "15550100",
        **extra,
    }
    if message_id is not None:
        fields["biz_opaque_callback_data"] = message_id
    return fields


def _webhook(*statuses: dict[str, Any]) -> bytes:
    """A ``messages`` webhook body as Meta sends it."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": list(statuses),
    }
    change = {"value": value, "field": "messages"}
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    ).encode()


def _post_whatsapp(api: ApiServer, body: bytes, signature: str | None = "sign") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = whatsapp_signature(_APP_SECRET, body)
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return api.call("POST", _WHATSAPP, key="", content=body, headers=headers)


def _post_twilio(
    api: ApiServer, message_id: str, params: dict[str, str], signed_url: str, token: str
) -> httpx.Response:
    query = f"?relayq_id={message_id}"
    signature = twilio_signature(token, signed_url + query, params)
    return api.call(
        "POST", _TWILIO + query, key="", data=params, headers={"X-Twilio-Signature": signature}
    )


def _twilio_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "From": "+15550199",
        "To": "+15550100",
        **extra,
    }


# -- WhatsApp --------------------------------------------------------------------------------


def test_receipts_keep_the_furthest_status_and_publish_one_event_per_change(
    settings: Settings, api_server: ApiServer, provider: ProviderThread, workers: WorkerPool
) -> None:
    first, second = _delivered(settings, provider, workers, 2)
    before = _record(api_server, first)

    answer = _post_whatsapp(api_server, _webhook(_status(first, "sent"), _status(second, "sent")))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"applied": 2, "unchanged": 0, "ignored": 0}

    answer = _post_whatsapp(api_server, _webhook(_status(first, "delivered")))
    assert answer.json()["applied"] == 1
    read = _post_whatsapp(api_server, _webhook(_status(first, "read")))
    assert read.json() == {"applied": 1, "unchanged": 0, "ignored": 0}

    # Late and duplicate: a delivered after read, and the read again. Nothing changes.
    late = _post_whatsapp(api_server, _webhook(_status(first, "delivered"), _status(first, "read")))
    assert late.json() == {"applied": 0, "unchanged": 2, "ignored": 0}

    record = _record(api_server, first)
    assert record["state"] == "delivered"  # relayq's own state stays
    assert record["receipt"] == "read"
    assert record["receipt_ms"] == _TIMESTAMP * 1000  # 13 digits, exact
    assert record["created_ms"] == before["created_ms"]
    assert record["provider_message_id"] == before["provider_message_id"]  # the send's own
    assert _record(api_server, second)["receipt"] == "sent"

    events = _receipt_events(settings)
    # One event per change, in order per message (partitions interleave).
    assert _receipts_of(events, first) == ["sent", "delivered", "read"]
    assert _receipts_of(events, second) == ["sent"]
    assert all(e.record.receipt_ms == _TIMESTAMP * 1000 for e in events)


def test_a_failed_receipt_after_an_accepted_send_keeps_the_providers_error(
    settings: Settings, api_server: ApiServer, provider: ProviderThread, workers: WorkerPool
) -> None:
    (message_id,) = _delivered(settings, provider, workers, 1)
    error = {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}
    body = _webhook(_status(message_id, "sent"), _status(message_id, "failed", errors=[error]))
    assert _post_whatsapp(api_server, body).json()["applied"] == 2

    record = _record(api_server, message_id)
    assert record["receipt"] == "failed"
    assert record["error"] == "whatsapp 131026: Message undeliverable"
    assert record["state"] == "delivered"
    # failed is final: a read arriving afterwards changes nothing.
    assert (
        _post_whatsapp(api_server, _webhook(_status(message_id, "read"))).json()["unchanged"] == 1
    )
    last = _receipt_events(settings)[-1]
    assert (last.message_id, last.record.receipt) == (message_id, "failed")
    assert last.record.error == "whatsapp 131026: Message undeliverable"


def test_forged_or_missing_signatures_get_403_and_change_nothing(
    settings: Settings,
    api_server: ApiServer,
    provider: ProviderThread,
    workers: WorkerPool,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    (message_id,) = _delivered(settings, provider, workers, 1)
    before = _record(api_server, message_id)
    body = _webhook(_status(message_id, "read"))

    forged = _post_whatsapp(api_server, body, whatsapp_signature("not-the-secret", body))
    assert forged.status_code == 403, forged.text
    assert "X-Hub-Signature-256" in forged.json()["error"]
    assert _post_whatsapp(api_server, body, None).status_code == 403
    tampered = body.replace(b'"read"', b'"failed"')
    assert (
        _post_whatsapp(api_server, tampered, whatsapp_signature(_APP_SECRET, body)).status_code
        == 403
    )
    params = _twilio_params("SM1", "delivered")
    wrong = _post_twilio(api_server, message_id, params, _PUBLIC_CALLBACK, "not-the-token")
    assert wrong.status_code == 403, wrong.text
    own_url = _post_twilio(api_server, message_id, params, api_server.url + _TWILIO, _AUTH_TOKEN)
    assert own_url.status_code == 403  # a callback URL is configured: that is the signed one

    assert _record(api_server, message_id) == before
    assert _receipt_events(settings) == []
    assert "receipt" not in json.loads(_stored(redis_client, keys, message_id))


def test_bad_payloads_are_400_and_statuses_of_no_relayq_message_are_counted(
    settings: Settings, api_server: ApiServer, provider: ProviderThread, workers: WorkerPool
) -> None:
    (message_id,) = _delivered(settings, provider, workers, 1)
    not_json = b"{not json"
    answer = _post_whatsapp(api_server, not_json)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "body"
    assert _post_whatsapp(api_server, b'{"entry": "no list"}').status_code == 400

    unknown = "0" * 26  # a relayq-shaped id no partition holds
    body = _webhook(
        _status(None, "delivered"),  # no biz_opaque_callback_data
        _status("someone-elses-id", "read"),
        _status(unknown, "read"),
        _status(message_id, "deleted"),  # not a receipt status
    )
    assert _post_whatsapp(api_server, body).json() == {"applied": 0, "unchanged": 0, "ignored": 4}
    assert "receipt" not in _record(api_server, message_id)


def test_the_verification_handshake_answers_the_challenge_only_for_the_right_token(
    api_server: ApiServer,
) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": _VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = api_server.call("GET", _WHATSAPP, key="", params=query)
    assert answer.status_code == 200, answer.text
    assert answer.text == "1158201444"
    assert answer.headers["content-type"].startswith("text/plain")

    wrong = api_server.call("GET", _WHATSAPP, key="", params={**query, "hub.verify_token": "nope"})
    assert wrong.status_code == 403
    assert "1158201444" not in wrong.text
    no_mode = {k: v for k, v in query.items() if k != "hub.mode"}
    assert api_server.call("GET", _WHATSAPP, key="", params=no_mode).status_code == 403


# -- Twilio ------------------------------------------------------------------------------------


def test_twilio_callbacks_signed_over_the_public_url_update_the_record(
    settings: Settings, api_server: ApiServer, provider: ProviderThread, workers: WorkerPool
) -> None:
    first, second = _delivered(settings, provider, workers, 2)

    def callback(message_id: str, status: str, **extra: str) -> dict[str, Any]:
        params = _twilio_params(f"SM{message_id}", status, **extra)
        answer = _post_twilio(api_server, message_id, params, _PUBLIC_CALLBACK, _AUTH_TOKEN)
        assert answer.status_code == 200, answer.text
        tally: dict[str, Any] = answer.json()
        return tally

    assert callback(first, "sending")["ignored"] == 1  # still inside Twilio: no receipt
    assert callback(first, "sent")["applied"] == 1
    assert callback(first, "delivered")["applied"] == 1
    assert callback(first, "sent")["unchanged"] == 1
    assert callback(second, "undelivered", ErrorCode="30003")["applied"] == 1

    record = _record(api_server, first)
    assert record["receipt"] == "delivered"
    failed = _record(api_server, second)
    assert (failed["receipt"], failed["error"]) == ("failed", "twilio 30003: undelivered")
    events = _receipt_events(settings)
    assert _receipts_of(events, first) == ["sent", "delivered"]
    assert _receipts_of(events, second) == ["failed"]


def test_without_a_public_callback_url_twilio_signs_the_requests_own_url(
    settings: Settings, provider: ProviderThread, workers: WorkerPool, tmp_path: Path
) -> None:
    own = settings.replace(twilio_status_callback=None)
    api = start_api_server(own, tmp_path / "own-url")
    try:
        (message_id,) = _delivered(own, provider, workers, 1)
        params = _twilio_params("SM42", "read")
        signed = _post_twilio(api, message_id, params, api.url + _TWILIO, _AUTH_TOKEN)
        assert signed.json() == {"applied": 1, "unchanged": 0, "ignored": 0}, signed.text
        assert _record(api, message_id)["receipt"] == "read"
    finally:
        api.stop()


def test_endpoints_refuse_every_callback_while_the_providers_secret_is_unset(
    settings: Settings, provider: ProviderThread, workers: WorkerPool, tmp_path: Path
) -> None:
    bare = settings.replace(
        whatsapp_app_secret=None, whatsapp_verify_token=None, twilio_auth_token=None
    )
    api = start_api_server(bare, tmp_path / "bare")
    try:
        (message_id,) = _delivered(bare, provider, workers, 1)
        body = _webhook(_status(message_id, "read"))
        for signature in (None, whatsapp_signature(_APP_SECRET, body), "sha256=" + "0" * 64):
            refused = _post_whatsapp(api, body, signature)
            assert refused.status_code == 503
            assert (
                refused.json()["error"] == "receipts for whatsapp need RELAYQ_WHATSAPP_APP_SECRET"
            )
        handshake = api.call("GET", _WHATSAPP, key="", params={"hub.mode": "subscribe"})
        assert handshake.status_code == 503
        assert "RELAYQ_WHATSAPP_VERIFY_TOKEN" in handshake.json()["error"]
        params = _twilio_params("SM1", "delivered")
        twilio = _post_twilio(api, message_id, params, api.url + _TWILIO, "")
        assert twilio.status_code == 503
        assert twilio.json()["error"] == "receipts for twilio need RELAYQ_TWILIO_AUTH_TOKEN"
        assert "receipt" not in _record(api, message_id)
    finally:
        api.stop()


# -- the record edited as text -------------------------------------------------------------------


def test_the_record_is_edited_as_text_every_other_field_exact(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    """A record with 16-digit numbers (beyond cjson's 14) and strings with quotes, slashes
    and non-ASCII text comes back exact but for the receipt's fields."""
    message = Message(
        id="0" * 25 + "1",
        tenant='te"n,"receipt":"read"/ä',
        conversation="c/1",
        recipient="+15550100",
        priority="normal",
        payload=b"{}",
        created_ms=1234567890123456,
    )
    partition = 3
    original = delivered_record(message, partition, b"1-0", "w1", 2, None, 1733212345678)
    redis_client.hset(keys.outcomes(partition), message.id, original)

    def apply(status: str, error: str | None = None) -> dict[str, int]:
        receipt = Receipt(
            message_id=message.id,
            provider_message_id='wamid."x"/é',
            status=status,
            at_ms=9007199254740993,  # 2**53 + 1: no float survives it
            error=error,
        )

        async def run() -> dict[str, int]:
            client = create_client(settings)
            try:
                tally = await apply_receipts(client, keys, [receipt], settings.events_keep)
            finally:
                await client.aclose()
            return {"applied": tally.applied, "unchanged": tally.unchanged}

        return asyncio.run(run())

    assert apply("delivered") == {"applied": 1, "unchanged": 0}
    assert apply("delivered") == {"applied": 0, "unchanged": 1}
    assert apply("failed", 'whatsapp 131026: "quoted", \\ and /') == {"applied": 1, "unchanged": 0}
    stored = _stored(redis_client, keys, message.id)
    record = decode_record(stored)
    before = decode_record(original)
    assert record.tenant == before.tenant and record.created_ms == 1234567890123456
    assert record.at_ms == before.at_ms == 1733212345678
    assert record.receipt == "failed" and record.receipt_ms == 9007199254740993
    assert record.error == 'whatsapp 131026: "quoted", \\ and /'
    assert record.provider_message_id == 'wamid."x"/é'
    assert json.loads(stored).keys() == {*json.loads(original), "receipt", "receipt_ms", "error",
                                         "provider_message_id"}  # fmt: skip
