"""The channels of ``relayq demo --channel``: what it sends on each, and how it checks
what the local provider's fakes received.

``whatsapp``, ``sms`` and ``email`` go through the WhatsApp Cloud API, Twilio and SendGrid
adapters (``RELAYQ_DELIVERER=channels``) to the fakes of those APIs on the local provider
(``ops.local_fakes``); ``mixed`` spreads the conversations over the three; ``webhook``
(channel ``None`` here) POSTs to the provider's ``/deliver``. Each fake rejects one
recipient for good with its provider's permanent error. The check reads what the fakes
recorded: relayq's message id travels in WhatsApp's ``biz_opaque_callback_data``,
SendGrid's ``custom_args.relayq_id`` and the ``relayq_id`` of Twilio's ``StatusCallback``
URL.
"""

from __future__ import annotations

import dataclasses
import math
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import msgspec

from relayq.ops.delivery_check import DeliveryCheck, check_deliveries
from relayq.ops.fake_http import Fault
from relayq.ops.local_fakes import FAKE_CHANNELS, fake_environment
from relayq.ops.local_provider import Delivery
from relayq.ops.sendgrid_fake import SentMail
from relayq.ops.twilio_fake import TwilioRequest
from relayq.ops.whatsapp_fake import RecordedRequest
from relayq.streams.message_id import message_id_time_ms

__all__ = (
    "CHANNELS",
    "Verdict",
    "channel_of",
    "channel_rows",
    "channels_passed",
    "check_fakes",
    "fake_progress",
    "fake_worker_env",
    "fakes_setup_text",
    "milliseconds",
    "payload_for",
    "recipient_for",
    "reject_recipients",
)

CHANNELS = ("webhook", "whatsapp", "sms", "email", "mixed")
_MIXED = ("whatsapp", "sms", "email")
_FAKES = {"whatsapp": "whatsapp", "sms": "twilio", "email": "sendgrid"}
"""Channel -> the local provider's fake that serves it (its path prefix and stats name)."""
_REJECTED = {
    "whatsapp": Fault(match="recipient", value="+19995550100", code="131026"),
    "sms": Fault(match="recipient", value="+19995550101", code="21610"),
    "email": Fault(match="recipient", value="rejected@example.com", code="invalid_recipient"),
}
"""Per channel, the recipient its fake always rejects with the provider's permanent error:
WhatsApp 131026 (undeliverable), Twilio 21610 (unsubscribed), SendGrid 400 (not a valid
address)."""
_UNTIMED = frozenset({"sms"})
"""Channels whose fake records no arrival time (Twilio's), so no latency."""


# -- what is sent ----------------------------------------------------------------------


def channel_of(channel: str, conversation: int) -> str | None:
    """The conversation's channel under the demo's ``--channel`` (None: the webhook,
    messages name no channel)."""
    if channel == "webhook":
        return None
    if channel == "mixed":
        return _MIXED[conversation % len(_MIXED)]
    return channel


def recipient_for(channel: str | None, conversation: int, rejected: bool) -> str:
    """The conversation's recipient (``rejected``: one the provider refuses for good)."""
    if channel is None:
        return f"reject-{conversation}" if rejected else f"+1555{conversation:07d}"
    if rejected:
        return str(_REJECTED[channel].value)
    if channel == "email":
        return f"user-{conversation:05d}@example.com"
    return f"+1555{conversation:07d}"  # E.164, as WhatsApp and Twilio want


def payload_for(channel: str | None, text: str, n: int) -> dict[str, Any]:
    """A valid payload of the channel's adapter."""
    if channel is None:
        return {"text": text, "n": n}
    if channel == "whatsapp":
        return {"type": "text", "text": {"body": text}}
    if channel == "sms":
        return {"body": text}
    return {"subject": f"relayq demo: {text}", "text": text}


def fake_worker_env(provider: str) -> dict[str, str]:
    """The worker variables that deliver through the adapters to the fakes at ``provider``."""
    return {
        "RELAYQ_DELIVERER": "channels",
        "RELAYQ_CHANNELS": FAKE_CHANNELS,
        **fake_environment(provider),
    }


def reject_recipients(provider: str, channels: set[str]) -> None:
    """Tell each fake in use which recipient to reject (its fault rules, over HTTP)."""
    for channel in sorted(channels):
        rules = msgspec.json.encode([_REJECTED[channel]])
        answer = httpx.post(f"{provider}/{_FAKES[channel]}/_faults", content=rules, timeout=5)
        answer.raise_for_status()


def fake_progress(provider: str) -> Callable[[], tuple[int, str]]:
    """A reader of (sends the fakes accepted so far, retries and throttles on the way)."""

    def read() -> tuple[int, str]:
        stats = httpx.get(f"{provider}/local/stats", timeout=5).json()
        counts = [stats[fake] for fake in _FAKES.values()]
        accepted, failed, throttled = (
            sum(c.get(key, 0) for c in counts) for key in ("accepted", "failed", "throttled")
        )
        return accepted, f"retries {failed}  throttles {throttled}"

    return read


# -- what the fakes received -----------------------------------------------------------


def _whatsapp_sends(body: bytes) -> list[tuple[str, int]]:
    """(relayq id, arrival ns) of each accepted send, from ``biz_opaque_callback_data``."""
    records = msgspec.json.decode(body, type=list[RecordedRequest])
    return [
        (r.biz_opaque_callback_data, r.arrived_ns)
        for r in records
        if r.status == 200 and r.biz_opaque_callback_data
    ]


def _twilio_sends(body: bytes) -> list[tuple[str, int]]:
    """(relayq id, 0) of each created message, from its ``StatusCallback`` query (the fake
    records no arrival time: answer order stands for it)."""
    sends = []
    for request in msgspec.json.decode(body, type=list[TwilioRequest]):
        callback = request.field("StatusCallback") if request.status == 201 else None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(callback or "").query)
        if "relayq_id" in query:
            sends.append((query["relayq_id"][0], 0))
    return sends


def _sendgrid_sends(body: bytes) -> list[tuple[str, int]]:
    """(relayq id, arrival ns) of each accepted mail, from ``custom_args.relayq_id``."""
    mails = msgspec.json.decode(body, type=list[SentMail])
    return [
        (m.custom_args["relayq_id"], m.arrived_ns)
        for m in mails
        if m.status == 202 and "relayq_id" in m.custom_args
    ]


_SENDS: dict[str, Callable[[bytes], list[tuple[str, int]]]] = {
    "whatsapp": _whatsapp_sends,
    "sms": _twilio_sends,
    "email": _sendgrid_sends,
}


def _fake_deliveries(
    provider: str, channel: str, where: Mapping[str, tuple[str, str]]
) -> list[Delivery]:
    """The channel's fake's accepted sends as deliveries, in arrival order."""
    body = httpx.get(f"{provider}/{_FAKES[channel]}/_requests", timeout=60).content
    deliveries = []
    for message_id, arrived_ns in sorted(_SENDS[channel](body), key=lambda send: send[1]):
        tenant, conversation = where.get(message_id, ("?", "?"))
        created_ms = message_id_time_ms(message_id) if message_id in where else 0
        deliveries.append(Delivery(tenant, conversation, message_id, created_ms, arrived_ns))
    return deliveries


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The check over everything, and per channel (fakes only)."""

    check: DeliveryCheck
    channels: dict[str, DeliveryCheck] = dataclasses.field(default_factory=dict)
    fake_stats: dict[str, Any] = dataclasses.field(default_factory=dict)


def _sent_on(
    sent: Mapping[tuple[str, str], list[str]],
    channels_of: Mapping[tuple[str, str], str | None],
    channels: Iterable[str],
) -> dict[tuple[str, str], list[str]]:
    wanted = set(channels)
    return {key: ids for key, ids in sent.items() if channels_of[key] in wanted}


def check_fakes(
    provider: str,
    sent: Mapping[tuple[str, str], list[str]],
    channels_of: Mapping[tuple[str, str], str | None],
    dead: list[str],
) -> Verdict:
    """Per channel and overall; the overall latency is over the channels with arrival times.
    ``channels_of``: (tenant, conversation) -> its channel."""
    where = {message_id: key for key, ids in sent.items() for message_id in ids}
    used = sorted({channel for channel in channels_of.values() if channel is not None})
    found = {channel: _fake_deliveries(provider, channel, where) for channel in used}
    checks = {
        channel: check_deliveries(_sent_on(sent, channels_of, [channel]), found[channel], dead)
        for channel in used
    }
    check = check_deliveries(sent, [d for c in used for d in found[c]], dead)
    timed = [channel for channel in used if channel not in _UNTIMED]
    latency = check_deliveries(
        _sent_on(sent, channels_of, timed), [d for c in timed for d in found[c]], dead
    )
    check = msgspec.structs.replace(
        check, latency_p50_ms=latency.latency_p50_ms, latency_p99_ms=latency.latency_p99_ms
    )
    stats = httpx.get(f"{provider}/local/stats", timeout=30).json()
    return Verdict(check, checks, stats)


def channels_passed(verdict: Verdict) -> bool:
    """Every channel that was sent on had its fake see sends."""
    return all(
        verdict.fake_stats[_FAKES[channel]].get("requests", 0) > 0
        for channel, check in verdict.channels.items()
        if check.sent
    )


# -- the summary -----------------------------------------------------------------------


def milliseconds(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} ms"


def fakes_setup_text(channel: str, fail_rate: float, throttle_rate: float) -> str:
    """The faults the fakes inject, in each provider's terms."""
    return (
        f"channel {channel}: the fakes fail {fail_rate:.0%} (WhatsApp "
        f"131000, Twilio/SendGrid 503) + throttle {throttle_rate:.0%} (WhatsApp "
        "130429, Twilio 63018, SendGrid 429)"
    )


def _channel_text(channel: str, check: DeliveryCheck, counts: Mapping[str, int]) -> str:
    latency = (
        "latency n/a (the Twilio fake records no arrival time)"
        if channel in _UNTIMED
        else f"latency p50 {milliseconds(check.latency_p50_ms)}"
    )
    return (
        f"{check.delivered:,} delivered, {check.dead_lettered:,} dead-lettered, "
        f"{check.lost:,} lost, {check.order_violations:,} out of order, "
        f"{check.duplicates:,} duplicates; {counts.get('requests', 0):,} sends to the fake "
        f"({counts.get('failed', 0):,} failed, {counts.get('throttled', 0):,} throttled on "
        f"purpose); {latency}"
    )


def channel_rows(verdict: Verdict) -> list[tuple[str, str]]:
    """A summary row per channel (none for the webhook)."""
    return [
        (f"channel {channel}", _channel_text(channel, check, verdict.fake_stats[_FAKES[channel]]))
        for channel, check in verdict.channels.items()
    ]
