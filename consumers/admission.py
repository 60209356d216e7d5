"""Admission to send, cluster-wide: provider pause, tenant in-flight cap, tenant rate,
global rate.

Lanes ask ``admit(envelope)`` before each attempt. Requests that arrive while a round
trip is in flight are decided together (group commit) by one ``admit_round.lua`` call:
it first frees the slots released since the last round, then admits per tenant as many
as its pause, cap and rate allow, then asks the global rate for all of those, so a
refused tenant never spends a global token. A round costs one round trip and one script
call however many sends and tenants it covers. A tenant refused for pause or rate, and
the whole worker refused by the global rate, are remembered locally until the wait is
over, so refusals cost no Redis traffic.

With every limit off (``Settings.flow_control`` false) ``admit`` costs no round trip; a
provider's throttling still pauses the tenant in this worker and, through its Redis pause
key, in every worker that has flow control on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from typing import Any

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


_Request = tuple[Envelope, "asyncio.Future[Refusal | None]"]

_ROUNDS_IN_FLIGHT = 4

_REFUSAL_TEXT = {b"paused": "paused", b"cap": "cap", b"rate": "rate"}


class Admission:
    def __init__(
        self, client: Redis, scripts: Scripts, keys: Keys, settings: Settings, worker_id: str
    ) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys
        self._worker_id = worker_id
        self.enabled = settings.flow_control
        self._slot_ttl_ms = round(settings.slot_ttl * 1000)
        self._tenant_args = (settings.tenant_cap, settings.tenant_rate, settings.tenant_burst)
        self._global_args = (settings.global_rate, settings.global_burst)
        self._global_open_at = 0.0
        self._tenant_open_at: dict[str, float] = {}
        self._queue: list[_Request] = []
        self._releases: defaultdict[str, list[str]] = defaultdict(list)
        self._wake = asyncio.Event()

    def holder(self, envelope: Envelope) -> str:
        # Entry ids are unique only within one stream: every partition and priority has
        # its own, so the stream is part of the holder.
        return f"{self._worker_id}:{envelope.stream}:{envelope.entry_id.decode()}"

    def may_skip(self, tenant: str) -> bool:
        """True when ``admit`` would let this tenant's send start at once with no round
        trip (flow control off and the tenant not paused by its provider here)."""
        return not self.enabled and self._tenant_open_at.get(tenant, 0.0) <= time.monotonic()

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
        """Decide queued admission requests in rounds; runs until cancelled.

        Up to ``_ROUNDS_IN_FLIGHT`` rounds overlap, so lanes wait about one round trip,
        not a queue of them; requests arriving meanwhile wait for the next round.
        """
        rounds = asyncio.Semaphore(_ROUNDS_IN_FLIGHT)
        async with asyncio.TaskGroup() as group:
            while True:
                await self._wake.wait()
                await rounds.acquire()
                self._wake.clear()
                batch, self._queue = self._queue, []
                releases, self._releases = self._releases, defaultdict(list)
                if batch or releases:
                    group.create_task(self._round(batch, releases, rounds))
                else:
                    rounds.release()

    async def _round(
        self,
        batch: list[_Request],
        releases: dict[str, list[str]],
        rounds: asyncio.Semaphore,
    ) -> None:
        try:
            await self._decide(batch, releases)
        except Exception as exc:  # Redis away: refuse for a moment, nothing is taken
            _log.warning("admission_failed", error=str(exc))
            for tenant, holders in releases.items():
                self._releases[tenant].extend(holders)  # the slot TTL is the last resort
            for _, future in batch:
                if not future.done():
                    future.set_result(Refusal("unavailable", 0.5))
            await asyncio.sleep(0.1)
            if self._releases:
                self._wake.set()
        finally:
            rounds.release()

    async def _decide(self, batch: list[_Request], releases: dict[str, list[str]]) -> None:
        holding = [r for r in batch if r[0].slot_held]
        asking: dict[str, list[_Request]] = defaultdict(list)
        for request in batch:
            if not request[0].slot_held:
                asking[request[0].message.tenant].append(request)
        released = releases
        tenants = list(asking.keys() | released.keys())
        keys: list[str] = [self._keys.global_rate, self._keys.global_limits]
        args: list[str | int | float] = [
            time.time_ns() // 1_000_000,
            self._slot_ttl_ms,
            *self._tenant_args,
        ]
        args += [*self._global_args, len(holding), len(tenants)]
        for tenant in tenants:
            keys += self._tenant_keys(tenant)
            gone, wanting = released.get(tenant, []), asking.get(tenant, [])
            args += ["\n".join(gone), "\n".join([self.holder(e) for e, _ in wanting])]
        reply = await self._scripts.admit_round(keys=keys, args=args)
        admitted = [*holding]
        for index, tenant in enumerate(tenants):
            count, wait_ms, reason = reply[2 + 3 * index : 5 + 3 * index]
            admitted += self._apply_tenant_reply(
                tenant, asking.get(tenant, []), count, wait_ms, reason
            )
        self._apply_global_reply(admitted, int(reply[0]), int(reply[1]))

    def _tenant_keys(self, tenant: str) -> tuple[str, str, str, str]:
        keys = self._keys
        return (
            keys.tenant_in_flight(tenant),
            keys.tenant_limits(tenant),
            keys.tenant_pause(tenant),
            keys.tenant_rate(tenant),
        )

    def _apply_tenant_reply(
        self, tenant: str, requests: list[_Request], count: Any, wait_ms: Any, reason: Any
    ) -> list[_Request]:
        admitted = int(count)
        for envelope, _ in requests[:admitted]:
            envelope.slot_held = True
        if admitted < len(requests):
            refusal = self._tenant_refusal(tenant, int(wait_ms), reason)
            for _, future in requests[admitted:]:
                future.set_result(refusal)
        return requests[:admitted]

    def _tenant_refusal(self, tenant: str, wait_ms: int, reason: bytes) -> Refusal:
        text = _REFUSAL_TEXT.get(reason, "rate")
        if wait_ms < 0:
            return Refusal(text, None)
        wait = wait_ms / 1000
        self._tenant_open_at[tenant] = time.monotonic() + wait
        return Refusal(text, wait)

    def _apply_global_reply(self, admitted: list[_Request], granted: int, wait_ms: int) -> None:
        for _, future in admitted[:granted]:
            future.set_result(None)
        if granted < len(admitted):
            wait = wait_ms / 1000
            self._global_open_at = max(self._global_open_at, time.monotonic() + wait)
            for _, future in admitted[granted:]:
                future.set_result(Refusal("global", wait))

    def release(self, envelope: Envelope) -> None:
        """Give back the tenant slot ``envelope`` holds (with the next admission round trip)."""
        if not envelope.slot_held:
            return
        envelope.slot_held = False
        self._releases[envelope.message.tenant].append(self.holder(envelope))
        self._wake.set()

    async def flush_releases(self) -> None:
        """Give back every slot still to be released now (shutdown)."""
        releases, self._releases = self._releases, defaultdict(list)
        if releases:
            async with self._client.pipeline(transaction=False) as pipe:
                for tenant, holders in releases.items():
                    pipe.zrem(self._keys.tenant_in_flight(tenant), *holders)
                await pipe.execute()

    async def pause_tenant(self, tenant: str, seconds: float) -> None:
        """The provider throttled this tenant: no worker sends for it for ``seconds``."""
        ms = max(1, round(seconds * 1000))
        self._tenant_open_at[tenant] = time.monotonic() + seconds
        try:
            await self._client.set(self._keys.tenant_pause(tenant), b"1", px=ms)
        except Exception as exc:  # the local pause still holds for this worker
            _log.warning("tenant_pause_failed", tenant=tenant, error=str(exc))
