"""Cluster-wide limits per channel, and the global cap of sends in flight.

A channel (``Message.channel``, else the worker's ``default_channel``) may have a cap of
sends in flight at once, a rate and a burst, across all workers: set by
``RELAYQ_CHANNEL_LIMITS`` and overridden at run time by ``relayq limits --channel``
(``{ns:flow}:c:<c>:limits``). ``RELAYQ_GLOBAL_CAP`` (or ``relayq limits --cap``) caps the
sends in flight over every channel and tenant. A provider that throttles a whole channel
(SendGrid's 429) pauses it for everyone (``{ns:flow}:c:<c>:pause``).

Cost: a send under any of these asks Redis once before it starts (``channel_admit_4.lua``)
and once after, to give its lease back (batched with other releases); a send on a
channel with no limits, with no global cap, pays nothing. A lease outlives a worker that
died holding it by ``Settings.slot_ttl``, then lapses.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis

from relayq.consumers.envelope import Envelope
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.scripts import Scripts
from relayq.streams.settings import ChannelLimits, Settings, parse_channel_limits

__all__ = ("ChannelGate", "channel_resolver")

_log = structlog.get_logger(__name__)
_CAP_POLL_MS = 50
"""Wait before asking again when a cap is full (the sends holding it end at no known time)."""
_NONE = ChannelLimits()


def channel_resolver(settings: Settings) -> Callable[[Message], str]:
    """The channel a message goes out on: its own, else the worker's default."""
    default = settings.default_channel

    def channel_of(message: Message) -> str:
        return message.channel or default

    return channel_of


class ChannelGate:
    def __init__(
        self, client: Redis, scripts: Scripts, keys: Keys, settings: Settings, worker_id: str
    ) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._worker_id = worker_id
        self._lease_ms = round(settings.slot_ttl * 1000)
        self._defaults = parse_channel_limits(settings.channel_limits or "{}")
        self._limits: dict[str, ChannelLimits] = dict(self._defaults)
        self._default_global_cap = settings.global_cap
        self._global_cap = settings.global_cap
        self._paused_until: dict[str, float] = {}
        self._numbers = itertools.count()
        self._releases: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        self.channel_of = channel_resolver(settings)

    def applies(self, message: Message) -> bool:
        """Whether a send of ``message`` must ask (its channel limited or paused, or a
        global cap on)."""
        if self._global_cap:
            return True
        channel = self.channel_of(message)
        return channel in self._limits or channel in self._paused_until

    async def acquire(self, envelope: Envelope) -> float | None:
        """None when the send may start (its lease held until ``release``); else seconds
        to wait before asking again."""
        channel = self.channel_of(envelope.message)
        paused_until = self._paused_until.get(channel, 0.0)
        now = time.monotonic()
        if paused_until > now:
            return paused_until - now
        limits = self._limits.get(channel, _NONE)
        lease = f"{self._worker_id}:{next(self._numbers)}"
        keys = self._keys
        wait_ms = await self._scripts.channel_admit(
            keys=[
                keys.channel_in_flight(channel),
                keys.channel_rate(channel),
                keys.channel_pause(channel),
                keys.global_in_flight,
            ],
            args=[
                lease,
                self._lease_ms,
                limits.cap,
                repr(float(limits.rate)),
                limits.burst,
                self._global_cap,
                _CAP_POLL_MS,
            ],
        )
        if int(wait_ms):
            return int(wait_ms) / 1000
        if limits.cap or self._global_cap:
            envelope.channel_lease = f"{channel}\n{lease}"
        return None

    def release(self, envelope: Envelope) -> str | None:
        """The send is over: its lease goes back (in the next batch of releases). The
        channel it was held on, None when it held none."""
        held, envelope.channel_lease = envelope.channel_lease, None
        if held is None:
            return None
        channel, _, lease = held.partition("\n")
        self._releases.append((channel, lease))
        self._wake.set()
        return channel

    async def pause(self, channel: str, seconds: float) -> None:
        """The provider asked the whole channel to wait: no worker sends on it meanwhile."""
        until = time.monotonic() + seconds
        self._paused_until[channel] = max(self._paused_until.get(channel, 0.0), until)
        ms = max(1, round(seconds * 1000))
        await self._client.set(self._keys.channel_pause(channel), b"1", px=ms)

    async def refresh(self) -> None:
        """Re-read the run-time limits (every ownership tick): each limited channel's
        override, the global cap, and the channels other workers paused."""
        keys = self._keys
        members = await self._client.smembers(keys.limited_channels)
        names = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
        known = sorted(names | set(self._defaults) | set(self._paused_until))
        pipe = self._client.pipeline(transaction=False)
        pipe.hget(keys.global_limits, "cap")
        for channel in known:
            pipe.hgetall(keys.channel_limits(channel))
            pipe.pttl(keys.channel_pause(channel))
        replies = await pipe.execute()
        cap = replies[0]
        self._global_cap = int(cap) if cap is not None else self._default_global_cap
        self._apply(known, replies[1:])

    def _apply(self, channels: list[str], replies: list[object]) -> None:
        limits: dict[str, ChannelLimits] = {}
        now = time.monotonic()
        for index, channel in enumerate(channels):
            override, pause_ms = replies[2 * index], replies[2 * index + 1]
            merged = _merged(self._defaults.get(channel, _NONE), override)
            if merged.cap or merged.rate:
                limits[channel] = merged
            if isinstance(pause_ms, int) and pause_ms > 0:
                self._paused_until[channel] = now + pause_ms / 1000
            elif self._paused_until.get(channel, 0.0) <= now:
                self._paused_until.pop(channel, None)
        self._limits = limits

    async def run(self) -> None:
        """Give leases back in batches until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Give back every lease released so far (also at shutdown)."""
        batch, self._releases = self._releases, []
        if batch:
            pipe = self._client.pipeline(transaction=False)
            for channel, lease in batch:
                pipe.zrem(self._keys.channel_in_flight(channel), lease)
                pipe.zrem(self._keys.global_in_flight, lease)
            try:
                await pipe.execute()
            except Exception as exc:  # the leases lapse on their own
                _log.warning("channel_release_failed", error=str(exc), leases=len(batch))


def _merged(default: ChannelLimits, override: object) -> ChannelLimits:
    """``default`` with the fields an operator set (``relayq limits --channel``)."""
    if not isinstance(override, dict) or not override:
        return default
    fields = {k.decode() if isinstance(k, bytes) else str(k): v for k, v in override.items()}
    return ChannelLimits(
        cap=int(fields.get("cap", default.cap)),
        rate=float(fields.get("rate", default.rate)),
        burst=int(fields.get("burst", default.burst)),
    )
