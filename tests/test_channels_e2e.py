"""Issue 15 end to end: real ``relayq worker`` processes with ``RELAYQ_DELIVERER=channels``
deliver to the providers' local fakes (WhatsApp Cloud API, Twilio, SendGrid) and a real
SMTP server. Each adapter: the provider's id lands in the outcome record; a 5xx once is
retried (attempts 2); a permanent code is dead-lettered with the provider's code. WhatsApp
throttling pauses only the sender (130429) or only the recipient (131056) without using
an attempt; 190 pauses the channel (others keep delivering) until ``relayq resume``. No
credential reaches a log, Redis or a span. The email fallback chain (SendGrid, then SMTP)
and the channel limits (rate and cap at the provider, two workers) hold."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from relayq.ops.fake_http import Fault
from relayq.ops.whatsapp_fake import RecordedRequest
from relayq.producers import SendRequest
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeRecord
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings
from tests import support
from tests.api_support import redis_contents
from tests.channel_support import (
    CREDENTIALS,
    OTHER_PHONE_ID,
    PHONE_ID,
    SENDGRID_KEY,
    Fakes,
    Inbox,
    InFlightMeter,
    channel_settings,
    dead_lettered,
    most_in_any_second,
    record_of,
    records_of,
    running_fakes,
    smtp_inbox,
    span_hook,
    start_channel_worker,
)
from tests.support import WorkerPool, WorkerProcess, run_cli, send_all, wait_until

ALL_CHANNELS = "whatsapp=whatsapp,sms=twilio,email=sendgrid>smtp"


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with running_fakes() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_inbox() as running:
        yield running


def _request(
    channel: str,
    recipient: str,
    conversation: str,
    *,
    sender: str | None = None,
    max_attempts: int | None = None,
) -> SendRequest:
    payloads = {
        "whatsapp": {"text": f"hello {conversation}"},
        "sms": {"body": f"hello {conversation}"},
        "email": {"subject": "Your order", "text": f"hello {conversation}"},
    }
    return SendRequest(
        tenant="acme",
        conversation=conversation,
        recipient=recipient,
        payload=payloads[channel],
        channel=channel,
        sender=sender,
        max_attempts=max_attempts,
    )


def _send(settings: Settings, *requests: SendRequest) -> list[str]:
    """Enqueue ``requests``; their message ids in order."""
    sent = send_all(settings, requests)
    order = {(r.tenant, r.conversation): 0 for r in requests}
    ids = []
    for request in requests:
        key = (request.tenant, request.conversation)
        ids.append(sent[key][order[key]])
        order[key] += 1
    return ids


def _records(client: redis.Redis, keys: Keys, ids: list[str]) -> list[OutcomeRecord]:
    found = records_of(client, keys, ids)
    assert all(record is not None for record in found.values()), found
    return [record for record in found.values() if record is not None]


def _finished(client: redis.Redis, keys: Keys, ids: list[str]) -> Callable[[], bool]:
    def done() -> bool:
        records = records_of(client, keys, ids).values()
        return all(r is not None and r.state in ("delivered", "dead_lettered") for r in records)

    return done


def _burst(workers: WorkerPool, settings: Settings) -> WorkerProcess:
    """A burst worker run to its end (exit 0)."""
    worker = start_channel_worker(workers, settings, burst=True)
    assert worker.wait(timeout=60) == 0, worker.log_tail()
    return worker


# -- each adapter: success, a retryable failure, a permanent code ---------------------------


Sends = Callable[[Fakes, Inbox, str], list[str | None]]
"""The provider's answers to each send to a recipient, in order: its id, None if refused."""


def _whatsapp_sends(fakes: Fakes, _inbox: Inbox, recipient: str) -> list[str | None]:
    return [r.wamid for r in list(fakes.whatsapp.requests) if r.to == recipient]


def _twilio_sends(fakes: Fakes, _inbox: Inbox, recipient: str) -> list[str | None]:
    return [r.sid for r in list(fakes.twilio.requests) if r.field("To") == recipient]


def _sendgrid_sends(fakes: Fakes, _inbox: Inbox, recipient: str) -> list[str | None]:
    return [r.message_id for r in list(fakes.sendgrid.requests) if r.to == recipient]


def _smtp_sends(_fakes: Fakes, inbox: Inbox, recipient: str) -> list[str | None]:
    refused: list[str | None] = [None] * inbox.refused.count(recipient)
    accepted = [str(m["Message-ID"]) for m in inbox.messages() if m["To"] == recipient]
    return refused + accepted


@dataclasses.dataclass(frozen=True)
class AdapterCase:
    channel: str
    channels: str
    recipients: tuple[str, str, str]
    """(delivered at once, refused once with a 5xx/4xx-transient then delivered, permanent)."""
    sends: Sends
    permanent_code: str
    """What the dead letter's error must hold: the provider's code."""
    faults: Callable[[Fakes, Inbox, tuple[str, str, str]], None]


def _whatsapp_faults(fakes: Fakes, _inbox: Inbox, to: tuple[str, str, str]) -> None:
    fakes.whatsapp.faults.add(
        Fault(match="recipient", value=to[1], code="131000", times=1),  # HTTP 500
        Fault(match="recipient", value=to[2], code="131026"),
    )


def _twilio_faults(fakes: Fakes, _inbox: Inbox, to: tuple[str, str, str]) -> None:
    fakes.twilio.faults.add(
        Fault(match="recipient", value=to[1], status=503, times=1),
        Fault(match="recipient", value=to[2], code="21610"),
    )


def _sendgrid_faults(fakes: Fakes, _inbox: Inbox, to: tuple[str, str, str]) -> None:
    fakes.sendgrid.faults.add(
        Fault(match="recipient", value=to[1], status=503, times=1),
        Fault(match="recipient", value=to[2], code="invalid_recipient"),
    )


def _smtp_faults(_fakes: Fakes, inbox: Inbox, to: tuple[str, str, str]) -> None:
    inbox.rcpt_replies[to[1]] = ["451 4.3.0 local error, try again later"]
    inbox.rcpt_replies[to[2]] = ["550 5.1.1 mailbox unavailable"]


_PHONES = ("+15550001", "+15550002", "+15550003")
_MAILBOXES = ("ann@example.com", "bob@example.com", "cat@example.com")
ADAPTER_CASES = [
    AdapterCase("whatsapp", "whatsapp=whatsapp", _PHONES, _whatsapp_sends, "whatsapp_131026",
                _whatsapp_faults),
    AdapterCase("sms", "sms=twilio", _PHONES, _twilio_sends, "twilio_21610", _twilio_faults),
    AdapterCase("email", "email=sendgrid", _MAILBOXES, _sendgrid_sends, "sendgrid_400",
                _sendgrid_faults),
    AdapterCase("email", "email=smtp", _MAILBOXES, _smtp_sends, "smtp_550", _smtp_faults),
]  # fmt: skip


@pytest.mark.parametrize("case", ADAPTER_CASES, ids=["whatsapp", "twilio", "sendgrid", "smtp"])
def test_an_adapter_records_the_provider_id_retries_and_dead_letters_with_the_code(
    case: AdapterCase,
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    fakes: Fakes,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, smtp_port = smtp
    settings = channel_settings(settings, fakes, case.channels, smtp_port, max_attempts=3)
    case.faults(fakes, inbox, case.recipients)
    ids = _send(settings, *(_request(case.channel, to, f"c{n}") for n, to in
                            enumerate(case.recipients)))  # fmt: skip
    _burst(workers, settings)

    ok, retried, bad = _records(redis_client, keys, ids)
    ok_sends, retried_sends, bad_sends = (case.sends(fakes, inbox, to) for to in case.recipients)
    assert len(ok_sends) == 1 and retried_sends[0] is None and bad_sends == [None]
    ok_id, retried_id = ok_sends[0], retried_sends[1]
    assert len(retried_sends) == 2 and ok_id and retried_id
    assert (ok.state, ok.attempts, ok.provider_message_id) == ("delivered", 1, ok_id)
    assert (retried.state, retried.attempts) == ("delivered", 2)
    assert retried.provider_message_id == retried_id
    assert bad.state == "dead_lettered" and bad.attempts == 1
    letter = dead_lettered(redis_client, keys)[ids[2]]
    assert letter["kind"] == b"permanent" and letter["attempts"] == b"1"
    assert letter["error"].startswith(case.permanent_code.encode()), letter["error"]
    shown = run_cli(settings, "message", "show", ids[0], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["record"]["provider_message_id"] == ok_id


# -- throttling: only the sender, or only the recipient, waits ------------------------------


def _held_while_others_flow(
    settings: Settings,
    fakes: Fakes,
    workers: WorkerPool,
    held: SendRequest,
    others: list[SendRequest],
) -> tuple[str, list[str]]:
    """Send ``held`` (the fake throttles it), then, once its first send was refused,
    ``others``: they are all delivered while ``held`` still waits. The ids."""
    start_channel_worker(workers, settings)
    (held_id,) = _send(settings, held)
    wait_until(
        lambda: _sends_of(fakes, held_id),
        timeout=15, message="the throttled message's first send",
    )  # fmt: skip
    other_ids = _send(settings, *others)
    wait_until(
        lambda: set(other_ids) <= _accepted(fakes), timeout=15, message="the others delivered"
    )
    assert held_id not in _accepted(fakes), "the throttle did not hold the message back"
    return held_id, other_ids


def _accepted(fakes: Fakes) -> set[str]:
    return {
        r.biz_opaque_callback_data
        for r in list(fakes.whatsapp.requests)
        if r.status == 200 and r.biz_opaque_callback_data
    }


def _sends_of(fakes: Fakes, message_id: str) -> list[RecordedRequest]:
    """The Cloud API requests that carried ``message_id``, in arrival order."""
    return [r for r in list(fakes.whatsapp.requests) if r.biz_opaque_callback_data == message_id]


def _answers(fakes: Fakes, message_id: str) -> list[int]:
    return [r.status for r in _sends_of(fakes, message_id)]


def _delivered_once_in_one_attempt(
    client: redis.Redis, keys: Keys, fakes: Fakes, message_id: str
) -> None:
    wait_until(_finished(client, keys, [message_id]), timeout=20, message="held message done")
    record = record_of(client, keys, message_id)
    assert record is not None and record.state == "delivered", record
    assert record.attempts == 1  # max_attempts=1: the throttles used none
    assert record.provider_message_id == _sends_of(fakes, message_id)[-1].wamid


def test_throughput_130429_pauses_only_that_sender(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool, fakes: Fakes
) -> None:
    settings = channel_settings(settings, fakes, "whatsapp=whatsapp")
    fakes.whatsapp.faults.add(Fault(match="sender", value=PHONE_ID, code="130429", times=3))
    held = _request("whatsapp", "+15550100", "held", sender=PHONE_ID, max_attempts=1)
    others = [
        _request("whatsapp", f"+1555020{n}", f"other-{n}", sender=OTHER_PHONE_ID, max_attempts=1)
        for n in range(6)
    ]
    held_id, _ = _held_while_others_flow(settings, fakes, workers, held, others)

    _delivered_once_in_one_attempt(redis_client, keys, fakes, held_id)
    assert _answers(fakes, held_id) == [400, 400, 400, 200]
    assert {r.error_code for r in fakes.whatsapp.requests if r.status == 400} == {130429}


def test_pair_rate_131056_pauses_only_that_recipient_and_keeps_its_order(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool, fakes: Fakes
) -> None:
    settings = channel_settings(settings, fakes, "whatsapp=whatsapp")
    fakes.whatsapp.faults.add(
        Fault(match="recipient", value="+15550100", code="131056", retry_after=1.0, times=2)
    )
    held = _request("whatsapp", "+15550100", "pair", max_attempts=1)
    others = [_request("whatsapp", f"+1555020{n}", f"other-{n}", max_attempts=1) for n in range(6)]
    held_id, _ = _held_while_others_flow(settings, fakes, workers, held, others)
    (second_id,) = _send(settings, _request("whatsapp", "+15550100", "pair", max_attempts=1))

    _delivered_once_in_one_attempt(redis_client, keys, fakes, held_id)
    wait_until(_finished(redis_client, keys, [second_id]), timeout=15, message="second done")
    assert _answers(fakes, held_id) == [400, 400, 200]
    to_pair = [
        r.biz_opaque_callback_data for r in list(fakes.whatsapp.requests) if r.to == "+15550100"
    ]
    assert to_pair == [held_id, held_id, held_id, second_id]  # the conversation kept its order


# -- 190: the channel is paused until an operator resumes it --------------------------------


def _paused(settings: Settings) -> dict[str, object]:
    shown = run_cli(settings, "paused", "--json")
    assert shown.returncode == 0, shown.stderr
    document: dict[str, object] = json.loads(shown.stdout)
    return document


def test_an_expired_token_pauses_whatsapp_other_channels_deliver_and_resume_sends_all(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool, fakes: Fakes
) -> None:
    settings = channel_settings(settings, fakes, "whatsapp=whatsapp,sms=twilio", max_attempts=2)
    fakes.whatsapp.faults.add(Fault(code="190"))
    chats = _send(settings, *(_request("whatsapp", f"+1555010{n}", f"w{n}") for n in range(3)))
    texts = _send(settings, *(_request("sms", f"+1555030{n}", f"s{n}") for n in range(3)))
    worker = start_channel_worker(workers, settings)

    wait_until(lambda: "channel:whatsapp" in _paused(settings)["paused"],  # type: ignore[operator]
               timeout=15, message="whatsapp paused")  # fmt: skip
    wait_until(_finished(redis_client, keys, texts), timeout=15, message="sms delivered")
    reason = _paused(settings)["reasons"]["channel:whatsapp"]  # type: ignore[index]
    assert reason.startswith("whatsapp_190: whatsapp 190 (HTTP 401)"), reason
    assert all(r.state == "delivered" for r in _records(redis_client, keys, texts))
    assert dead_lettered(redis_client, keys) == {}
    assert all(
        r.state not in ("delivered", "dead_lettered") for r in _records(redis_client, keys, chats)
    )
    refused = len(fakes.whatsapp.requests)
    assert refused >= 1 and all(r.status == 401 for r in fakes.whatsapp.requests)
    assert "channel_down" in worker.log_tail(1_000_000)

    fakes.whatsapp.faults.clear()  # the operator fixed the token
    resumed = run_cli(settings, "resume", "--channel", "whatsapp")
    assert resumed.returncode == 0, resumed.stderr
    wait_until(_finished(redis_client, keys, chats), timeout=20, message="whatsapp delivered")
    records = _records(redis_client, keys, chats)
    assert [(r.state, r.attempts) for r in records] == [("delivered", 1)] * 3
    assert "channel:whatsapp" not in _paused(settings)["paused"]  # type: ignore[operator]
    assert dead_lettered(redis_client, keys) == {}


# -- credentials never appear ---------------------------------------------------------------


def test_no_credential_reaches_logs_redis_or_spans(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    fakes: Fakes,
    smtp: tuple[Inbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every path that writes a reason: a success, a permanent code (dead letter), channel
    down (WhatsApp 190, Twilio 20003: the pause reason and the error log), SendGrid
    refusing the key (falls back to SMTP, which authenticates), at debug log level, with
    tracing on."""
    inbox, smtp_port = smtp
    monkeypatch.setattr(support, "WORKER_LOG_LEVEL", "debug")
    settings = channel_settings(settings, fakes, ALL_CHANNELS, smtp_port, max_attempts=2)
    fakes.whatsapp.faults.add(
        Fault(match="recipient", value="+15550002", code="131026"),
        Fault(match="recipient", value="+15550003", code="190"),
    )
    fakes.twilio.faults.add(
        Fault(match="recipient", value="+15550002", code="21211"),
        Fault(match="recipient", value="+15550003", code="20003"),
    )
    fakes.sendgrid.api_key = "SG.another-key-than-the-workers"
    inbox.rcpt_replies["nobody@example.com"] = ["550 5.1.1 mailbox unavailable"]
    ids = _send(
        settings,
        *(_request("whatsapp", f"+1555000{n}", f"w{n}") for n in (1, 2, 3)),
        *(_request("sms", f"+1555000{n}", f"s{n}") for n in (1, 2, 3)),
        _request("email", "ann@example.com", "e1"),
        _request("email", "nobody@example.com", "e2"),
    )
    hook = span_hook(tmp_path)
    worker = start_channel_worker(workers, settings, env=hook)
    finished = [ids[0], ids[1], ids[3], ids[4], ids[6], ids[7]]
    wait_until(_finished(redis_client, keys, finished), timeout=30, message="sends finished")
    wait_until(lambda: len(_paused(settings)["reasons"]) == 2, timeout=15,  # type: ignore[arg-type]
               message="whatsapp and sms paused")  # fmt: skip
    worker.process.terminate()
    worker.wait(timeout=20)

    assert inbox.authenticated == [True]  # the SMTP password was used
    assert sorted(dead_lettered(redis_client, keys)) == sorted([ids[1], ids[4], ids[7]])
    spans = Path(hook["TEST_SPANS_FILE"]).read_text()
    assert '"POST"' in spans and "relayq deliver" in spans
    places = {
        "worker log": worker.log_path.read_text(errors="replace"),
        "redis (records, dead letters, events, pauses)": redis_contents(redis_client).decode(
            errors="replace"
        ),
        "spans": spans,
    }
    assert "channel_down" in places["worker log"] and '"level": "info"' in places["worker log"]
    for secret in CREDENTIALS:
        for place, text in places.items():
            assert secret not in text, f"a credential is in the {place}"
    assert SENDGRID_KEY[3:] not in places["worker log"]


# -- the email fallback chain ---------------------------------------------------------------


def test_sendgrid_down_falls_back_to_smtp_whose_message_id_is_recorded(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    fakes: Fakes,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, smtp_port = smtp
    settings = channel_settings(settings, fakes, "email=sendgrid>smtp", smtp_port)
    fakes.sendgrid.faults.add(Fault(status=503))
    ids = _send(settings, *(_request("email", f"u{n}@example.com", f"e{n}") for n in range(3)))
    _burst(workers, settings)

    records = _records(redis_client, keys, ids)
    assert [(r.state, r.attempts) for r in records] == [("delivered", 1)] * 3
    assert sorted(r.provider_message_id or "" for r in records) == sorted(inbox.message_ids())
    assert [r.provider_message_id for r in records] == [f"<{mid}@relayq>" for mid in ids]
    assert sorted(r.to or "" for r in fakes.sendgrid.requests) == [
        f"u{n}@example.com" for n in range(3)
    ]
    assert {r.status for r in fakes.sendgrid.requests} == {503}


def test_both_down_retries_max_attempts_then_dead_letters_with_both_errors(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool, fakes: Fakes
) -> None:
    closed_port = free_port()
    settings = channel_settings(settings, fakes, "email=sendgrid>smtp", closed_port, max_attempts=3)
    fakes.sendgrid.faults.add(Fault(status=503))
    (message_id,) = _send(settings, _request("email", "ann@example.com", "e1"))
    _burst(workers, settings)

    record = record_of(redis_client, keys, message_id)
    assert record is not None and (record.state, record.attempts) == ("dead_lettered", 3)
    letter = dead_lettered(redis_client, keys)[message_id]
    error = letter["error"].decode()
    assert letter["kind"] == b"exhausted" and letter["attempts"] == b"3"
    assert error.startswith("fallback_exhausted: sendgrid: "), error
    assert "503" in error and "; smtp: SMTP connection at connect" in error, error
    assert error.endswith("(after 3 attempts)"), error
    assert len(fakes.sendgrid.requests) == 3


# -- channel limits at the provider ---------------------------------------------------------


LIMITS = {"email": {"rate": 10, "cap": 5}, "whatsapp": {"rate": 5, "cap": 3}}


def test_two_workers_keep_each_channels_rate_and_cap_at_the_real_adapters(
    settings: Settings, keys: Keys, redis_client: redis.Redis, workers: WorkerPool
) -> None:
    meter = InFlightMeter()
    with running_fakes(latency=0.3, meter=meter) as fakes:
        limited = channel_settings(
            settings, fakes, "whatsapp=whatsapp,email=sendgrid",
            channel_limits=json.dumps(LIMITS), max_attempts=30,
        )  # fmt: skip
        backlog = [
            request
            for n in range(30)
            for request in (
                _request("email", f"u{n % 10}@example.com", f"e{n % 10}"),
                _request("whatsapp", f"+15550{n % 10:03d}", f"w{n % 10}"),
            )
            if request.channel == "email" or n < 15
        ]
        ids = _send(limited, *backlog)
        for _ in range(2):
            start_channel_worker(workers, limited)
        wait_until(_finished(redis_client, keys, ids), timeout=40, message="backlog delivered")

    assert all(r.state == "delivered" for r in _records(redis_client, keys, ids))
    for channel, limit in LIMITS.items():
        arrivals = meter.arrivals(channel)
        most, in_flight = most_in_any_second(arrivals), meter.most_in_flight(channel)
        print(f"{channel}: {len(arrivals)} sends, most in 1 s {most}, most in flight {in_flight}")
        assert len(arrivals) == (30 if channel == "email" else 15), channel
        assert most <= limit["rate"] + 1 + 1, f"{channel}: {most} sends in one second"  # burst 1
        assert in_flight <= limit["cap"], f"{channel}: {in_flight} in flight"
