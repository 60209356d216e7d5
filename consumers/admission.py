"""Admission to send, cluster-wide: provider pauses, the tenant in-flight cap, tenant,
sender and global rates.

Each worker leases what it needs from Redis in rounds (``lease_round.lua``, one call for
every budget due) and admits sends from its local ``Budget``s without a round trip:
tenant slots are a lease renewed every ``TICK`` (sized to what the worker uses, shrunk to
a fair share while another worker waits for that tenant); rate tokens are granted for the
sends waiting plus a short prefetch, and lapse soon after (``budget.TOKEN_LIFETIME``). A
send that finds its budget empty waits for the next round; a refusal (pause, cap, rate)
is remembered locally until its wait is over, so refusals cost no Redis traffic.

With every limit off (``Settings.flow_control`` false) there are no rounds at all; a
provider's throttling still pauses the tenant (or sender) in this worker and, through its
Redis pause key, in every worker that has flow control on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import time
from collections.abc import Iterator

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from relayq.consumers.budget import Budget
from relayq.consumers.envelope import Envelope
from relayq.consumers.lease_round import apply_reply, plan_round
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

__all__ = ("TICK", "Admission", "Refusal")

_log = structlog.get_logger(__name__)

TICK = 0.1
"""Seconds between rounds that renew slot leases and re-read limits and pauses."""


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """Why a send may not start now, and for how long (None: until a tenant slot frees)."""

    reason: str
    wait: float | None


_ASK = Refusal("ask", 0.0)  # the budget cannot say: wait for the next round
_UNAVAILABLE = Refusal("unavailable", 0.5)


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
        self._send_timeout = settings.send_timeout
        self._tenants: dict[str, Budget] = {}
        self._senders: dict[str, Budget] = {}
        self._global = Budget()
        self._wake = asyncio.Event()
        self._next_round: asyncio.Future[bool] | None = None
        self._round_lock = asyncio.Lock()
        self.rounds = 0
        """Round trips made (each covers every budget due)."""
        self.waits = 0
        """Sends that waited for a round (their budgets could not say at once)."""
        self._next_refill = math.inf
        """When the first budget holding tokens is due a top-up: a round then, even if no
        send comes to notice (sends come in bursts; tokens would lapse in between)."""
        self._latency = 0.0
        """How long a round takes, from when it is due to when its reply is applied
        (moving average): under load the event loop runs many sends in between."""
        self._pauses_end = 0.0
        """No provider pause known to this worker lasts beyond this (fast path: skip the
        pause checks before it)."""

    def may_skip(self, message: Message) -> bool:
        """True when the send may start with no admission at all (flow control off and
        neither the tenant nor the sender paused by its provider here)."""
        if self.enabled:
            return False
        return self._paused(message, time.monotonic()) is None

    def try_admit(self, envelope: Envelope) -> bool:
        """Admit from what this worker holds, with no round trip; False: ``admit`` must.

        The common case (no sender, no pause anywhere, budgets fresh with room) is checked
        and taken inline (``_check`` and ``_take`` with the method calls spelled out):
        this runs before every send.
        """
        message = envelope.message
        tenant = self._tenants.get(message.tenant)
        now = time.monotonic()
        glob = self._global
        if (
            tenant is None
            or message.sender is not None
            or now < self._pauses_end
            or now >= tenant.open_until
            or now >= glob.open_until
            or tenant.free <= 0
            or tenant.tokens <= 0
            or glob.tokens <= 0
            or not self.enabled
        ):
            if self._check(message, now, asked=False) is not None:
                return False
            if self.enabled:
                self._take(envelope, now)
            return True
        tenant.in_use += 1
        tenant.free -= 1
        if tenant.in_use > tenant.peak:  # noqa: PLR1730 - a compare is cheaper than max()
            tenant.peak = tenant.in_use
        tenant.tokens -= 1
        tenant.touched = True
        tenant.taken_at = now
        glob.tokens -= 1
        glob.taken_at = now
        envelope.slot = tenant
        if (
            tenant.tokens < tenant.refill_below
            or glob.tokens < glob.refill_below
            or now >= tenant.refill_at
            or now >= glob.refill_at
        ):
            self._wake.set()
        return True

    async def admit(self, envelope: Envelope) -> Refusal | None:
        """None when the send may start now (it then counts until ``release``), else why not."""
        message, asked = envelope.message, False
        while True:
            now = time.monotonic()
            refusal = self._check(message, now, asked)
            if refusal is None:
                if self.enabled:
                    self._take(envelope, now)
                return None
            if refusal is _ASK:
                if not await self._ask(message):
                    return _UNAVAILABLE
                asked = True
            elif refusal.reason == "global":  # nobody may send: the lane waits
                await asyncio.sleep(refusal.wait or 0.001)
                asked = False
            else:
                return refusal

    def release(self, envelope: Envelope) -> None:
        """The send is over: its tenant slot is free for this worker's next send."""
        tenant = envelope.slot
        if tenant is not None:
            envelope.slot = None
            tenant.in_use -= 1
            tenant.free += 1
            # tenant.owes(), spelled out (this runs after every send):
            if tenant.recorded > tenant.slots and tenant.recorded > tenant.in_use:
                self._wake.set()  # the lease holds more than may be kept: give it back

    async def pause_for(self, message: Message, seconds: float, *, tenant: bool = False) -> None:
        """The provider throttled this message's sender (or, without one or with
        ``tenant``, its tenant): no worker sends for it for ``seconds``."""
        if message.sender is not None and not tenant:
            budget, key = (
                _budget(self._senders, message.sender),
                self._keys.sender_pause(message.sender),
            )
        else:
            budget, key = (
                _budget(self._tenants, message.tenant),
                self._keys.tenant_pause(message.tenant),
            )
        budget.paused_until = max(budget.paused_until, time.monotonic() + seconds)
        self._pauses_end = max(self._pauses_end, budget.paused_until)
        try:
            await self._client.set(key, b"1", px=max(1, round(seconds * 1000)))
        except (RedisError, OSError) as exc:  # the local pause still holds for this worker
            _log.warning("provider_pause_failed", key=key, error=str(exc))

    def _paused(self, message: Message, now: float) -> Refusal | None:
        tenant = self._tenants.get(message.tenant)
        if tenant is not None and tenant.paused_until > now:
            return Refusal("paused", tenant.paused_until - now)
        if message.sender is not None:
            sender = self._senders.get(message.sender)
            if sender is not None and sender.paused_until > now:
                return Refusal("paused", sender.paused_until - now)
        return None

    def _check(self, message: Message, now: float, asked: bool) -> Refusal | None:
        """None when every budget the send needs has room now; else why not (``_ASK``:
        the next round must tell)."""
        refusal = self._paused(message, now)
        if refusal is not None or not self.enabled:
            return refusal
        tenant = _budget(self._tenants, message.tenant)
        sender = None
        if message.sender is not None:
            sender = _budget(self._senders, message.sender)
            if sender.known_until <= now:
                return _ASK
        if tenant.known_until <= now or self._global.known_until <= now:
            return _ASK
        if not tenant.slot_free(now, self._send_timeout):
            return self._no_slot(tenant, asked)
        refusal = _no_token(tenant, "rate", now, asked)
        if refusal is None and sender is not None:
            refusal = _no_token(sender, "sender", now, asked)
        if refusal is None:
            refusal = _no_token(self._global, "global", now, asked)
        return refusal

    @staticmethod
    def _no_slot(tenant: Budget, asked: bool) -> Refusal:
        if not asked:
            return _ASK
        if tenant.free > 0:  # the lease could not be renewed
            return _UNAVAILABLE
        tenant.starved = True
        return Refusal("cap", None)

    def _take(self, envelope: Envelope, now: float) -> None:
        message = envelope.message
        tenant = self._tenants[message.tenant]
        tenant.take(now)
        self._global.take_token(now)
        low = tenant.running_low(now) or self._global.running_low(now)
        if message.sender is not None:
            sender = self._senders[message.sender]
            sender.take_token(now)
            low = low or sender.running_low(now)
        envelope.slot = tenant
        if low:
            self._wake.set()

    def stats(self) -> dict[str, int]:
        """Counters for the worker's logs and its SIGUSR1 dump."""
        return {"admission_rounds": self.rounds, "admission_waits": self.waits}

    async def _ask(self, message: Message) -> bool:
        """Wait for the next round to cover this message's budgets; False if it failed."""
        self.waits += 1
        self._tenants[message.tenant].asking += 1
        self._global.asking += 1
        if message.sender is not None:
            self._senders[message.sender].asking += 1
        if self._next_round is None:
            self._next_round = asyncio.get_running_loop().create_future()
        waiter = self._next_round
        self._wake.set()
        return await waiter

    async def run(self) -> None:
        """Run rounds until cancelled: when a send waits or a budget runs low (at the
        latest when its tokens are due a top-up), and every ``TICK`` to renew leases and
        re-read limits and pauses."""
        if not self.enabled:
            await asyncio.Event().wait()
        next_tick = time.monotonic()
        while True:
            delay = min(next_tick, self._next_refill) - time.monotonic()
            if delay > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            self._wake.clear()
            now = time.monotonic()
            tick = now >= next_tick
            if tick:
                next_tick = now + TICK
            await self._round(now, tick=tick)

    async def _round(self, now: float, *, tick: bool, closing: bool = False) -> None:
        async with self._round_lock:
            waiters, self._next_round = self._next_round, None
            ok = await self._exchange(now, tick, closing)
            if waiters is not None:
                waiters.set_result(ok)
            if not ok:
                await asyncio.sleep(0.1)

    async def _exchange(self, now: float, tick: bool, closing: bool) -> bool:
        # Cover what falls due before this round's reply can arrive, not only what is
        # due now: under load the next round starts only once this one is back.
        horizon = now + self._latency
        tenants = list(_due(self._tenants, horizon, tick or closing))
        senders = [] if closing else list(_due(self._senders, horizon, tick))
        if tick:
            _forget_idle(self._tenants, now)
            _forget_idle(self._senders, now)
        plan = plan_round(
            self._keys,
            self._settings,
            self._worker_id,
            tenants,
            senders,
            self._global,
            now,
            horizon=horizon,
            closing=closing,
        )
        self.rounds += 1
        try:
            reply = await self._scripts.lease_round(keys=plan.keys, args=plan.args)
        except (RedisError, OSError) as exc:  # Redis away: budgets lapse, nothing is lost
            _log.warning("admission_failed", error=str(exc))
            return False
        values, settings, arrived = [int(v) for v in reply], self._settings, time.monotonic()
        self._latency += (arrived - now - self._latency) * 0.25
        pauses_end = apply_reply(
            plan, values, arrived, settings.slot_ttl, settings.send_timeout, 2 * self._latency
        )
        self._pauses_end = max(self._pauses_end, pauses_end)
        self._next_refill = _next_refill(arrived, self._global, self._tenants, self._senders)
        return True

    async def give_back(self) -> None:
        """Return every tenant slot not in flight now (shutdown), in one round trip."""
        if self.enabled and self._tenants:
            await self._round(time.monotonic(), tick=False, closing=True)


def _budget(table: dict[str, Budget], name: str) -> Budget:
    budget = table.get(name)
    if budget is None:
        budget = table[name] = Budget()
    return budget


def _no_token(budget: Budget, reason: str, now: float, asked: bool) -> Refusal | None:
    if budget.token_free(now):
        return None
    if budget.rate_open_at > now:
        return Refusal(reason, budget.rate_open_at - now)
    return Refusal(reason, 0.005) if asked else _ASK


def _due(table: dict[str, Budget], now: float, tick: bool) -> Iterator[tuple[str, Budget]]:
    """The budgets a round covers: those with sends waiting or tokens running low, and at
    a tick every one in use (leases to renew, limits and pauses to re-read)."""
    for name, budget in table.items():
        if budget.asking or budget.running_low(now) or budget.owes() or (tick and budget.in_play()):
            yield name, budget


def _next_refill(now: float, glob: Budget, *tables: dict[str, Budget]) -> float:
    """When the first budget holding tokens is due a top-up, after ``now``. A top-up time
    already passed is left out: the round just made found that budget not running low (its
    tokens unused and its use too slow to want more), and counting it would start the next
    round at once, and the next, in a busy loop until a send came. A send that takes from
    it wakes the loop itself."""
    due = math.inf
    for budget in itertools.chain((glob,), *(table.values() for table in tables)):
        if budget.tokens > 0 and now < budget.refill_at < due:
            due = budget.refill_at
    return due


def _forget_idle(table: dict[str, Budget], now: float) -> None:
    for name in [name for name, budget in table.items() if budget.forgettable(now)]:
        del table[name]
