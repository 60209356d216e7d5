"""Admission to send, cluster-wide: provider pause, tenant in-flight cap, tenant rate, global rate.

Lanes ask ``admit(envelope)`` before each attempt. Requests that arrive while a round trip
is in flight are sent together (group commit): phase one runs ``admit_tenant_4.lua`` for
each, phase two ``admit_global_2.lua`` for those the tenant phase admitted, so a refused
tenant never spends a global token. A tenant refused for pause or rate, and the whole
worker refused by the global rate, are remembered locally until the wait is over, so
refusals cost no Redis traffic. Slot releases go out in the same pipeline, ahead of the
admissions, so a slot freed here is free for the very next request.

With every limit off (``Settings.flow_control`` false) ``admit`` costs no round trip; a
provider's throttling still pauses the tenant in this worker and, through its Redis pause
key, in every worker that has flow control on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict

import structlog
from redis.asyncio import Redis

from consumers.envelope import Envelope
from streams.keys import Keys
from streams.scripts import Scripts
from streams.settings import Settings

__all__ = ("Admission", "Refusal")

_log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """Why a send may not start now, and for how long (None: until a tenant slot frees)."""

    reason: str
    wait: float | None


_REFUSAL_TEXT = {b"paused": "paused", b"cap": "cap", b"rate": "rate"}


class Admission:
    def __init__(
        self, client: Redis, scripts: Scripts, keys: Keys, settings: Settings, worker_id: str
    ) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._settings = settings
        self._worker_id = worker_id
        self.enabled = settings.flow_control
        self._slot_ttl_ms = round(settings.slot_ttl * 1000)
        self._tenant_args = (settings.tenant_cap, settings.tenant_rate, settings.tenant_burst)
        self._global_args = (settings.global_rate, settings.global_burst)
        self._global_open_at = 0.0
        self._tenant_open_at: dict[str, float] = {}
        self._queue: list[tuple[Envelope, asyncio.Future[Refusal | None]]] = []
        self._releases: defaultdict[str, list[str]] = defaultdict(list)
        self._wake = asyncio.Event()

    def holder(self, envelope: Envelope) -> str:
        # Entry ids are unique only within one stream: every partition and priority has
        # its own, so the stream is part of the holder.
        return f"{self._worker_id}:{envelope.stream}:{envelope.entry_id.decode()}"

    async def admit(self, envelope: Envelope) -> Refusal | None:
        """None when the send may start now (a tenant slot is then held), else a Refusal."""
        while True:
            now = time.monotonic()
            tenant_wait = self._tenant_open_at.get(envelope.message.tenant, 0.0) - now
            if tenant_wait > 0 and not envelope.slot_held:
                return Refusal("rate", tenant_wait)
            if not self.enabled:
                return None
            if self._global_open_at > now:
                await asyncio.sleep(self._global_open_at - now)  # nobody may send: the lane waits
                continue
            future: asyncio.Future[Refusal | None] = asyncio.get_running_loop().create_future()
            self._queue.append((envelope, future))
            self._wake.set()
            refusal = await future
            if refusal is None or refusal.reason != "global":
                return refusal

    async def run(self) -> None:
        """Send queued admission requests in batches; runs until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            releases, self._releases = self._releases, defaultdict(list)
            try:
                await self._decide(batch, releases)
            except Exception as exc:  # Redis away: refuse for a moment, nothing is taken
                _log.warning("admission_failed", error=str(exc))
                for key, holders in releases.items():
                    self._releases[key].extend(holders)  # the slot TTL is the last resort
                for _, future in batch:
                    if not future.done():
                        future.set_result(Refusal("unavailable", 0.5))
                await asyncio.sleep(0.1)
                if self._releases:
                    self._wake.set()

    async def _decide(
        self,
        batch: list[tuple[Envelope, asyncio.Future[Refusal | None]]],
        releases: dict[str, list[str]],
    ) -> None:
        now_ms = time.time_ns() // 1_000_000
        tenant_phase = [(e, f) for e, f in batch if not e.slot_held]
        if tenant_phase or releases:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, holders in releases.items():
                    pipe.zrem(key, *holders)
                for envelope, _ in tenant_phase:
                    tenant = envelope.message.tenant
                    keys = self._keys
                    await self._scripts.admit_tenant(
                        keys=(keys.tenant_in_flight(tenant), keys.tenant_limits(tenant),
                              keys.tenant_pause(tenant), keys.tenant_rate(tenant)),
                        args=(self.holder(envelope), now_ms, self._slot_ttl_ms, *self._tenant_args),
                        client=pipe,
                    )  # fmt: skip
                replies = (await pipe.execute())[len(releases) :]
            for (envelope, future), (ok, wait_ms, reason) in zip(
                tenant_phase, replies, strict=True
            ):
                if ok:
                    envelope.slot_held = True
                else:
                    future.set_result(self._tenant_refusal(envelope, int(wait_ms), reason))
        await self._global_phase([(e, f) for e, f in batch if not f.done()], now_ms)

    def _tenant_refusal(self, envelope: Envelope, wait_ms: int, reason: bytes) -> Refusal:
        text = _REFUSAL_TEXT.get(reason, "rate")
        if wait_ms < 0:
            return Refusal(text, None)
        wait = wait_ms / 1000
        self._tenant_open_at[envelope.message.tenant] = time.monotonic() + wait
        return Refusal(text, wait)

    async def _global_phase(
        self, batch: list[tuple[Envelope, asyncio.Future[Refusal | None]]], now_ms: int
    ) -> None:
        if not batch:
            return
        # Runs even when the default global rate is off: ``{ns}:limits`` can switch it on.
        async with self._client.pipeline(transaction=False) as pipe:
            for _ in batch:
                await self._scripts.admit_global(
                    keys=(self._keys.global_rate, self._keys.global_limits),
                    args=(now_ms, *self._global_args),
                    client=pipe,
                )
            replies = await pipe.execute()
        for (_, future), (ok, wait_ms) in zip(batch, replies, strict=True):
            if ok:
                future.set_result(None)
            else:
                wait = int(wait_ms) / 1000
                self._global_open_at = max(self._global_open_at, time.monotonic() + wait)
                future.set_result(Refusal("global", wait))

    def release(self, envelope: Envelope) -> None:
        """Give back the tenant slot ``envelope`` holds (with the next admission round trip)."""
        if not envelope.slot_held:
            return
        envelope.slot_held = False
        self._releases[self._keys.tenant_in_flight(envelope.message.tenant)].append(
            self.holder(envelope)
        )
        self._wake.set()

    async def flush_releases(self) -> None:
        """Give back every slot still to be released now (shutdown)."""
        releases, self._releases = self._releases, defaultdict(list)
        if releases:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, holders in releases.items():
                    pipe.zrem(key, *holders)
                await pipe.execute()

    async def pause_tenant(self, tenant: str, seconds: float) -> None:
        """The provider throttled this tenant: no worker sends for it for ``seconds``."""
        ms = max(1, round(seconds * 1000))
        self._tenant_open_at[tenant] = time.monotonic() + seconds
        try:
            await self._client.set(self._keys.tenant_pause(tenant), b"1", px=ms)
        except Exception as exc:  # the local pause still holds for this worker
            _log.warning("tenant_pause_failed", tenant=tenant, error=str(exc))
