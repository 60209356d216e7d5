"""What a lane asks before it sends a conversation's head entry, and tells after.

``enter`` checks, in order: an operator pause of the namespace, the priority, the tenant
or the head's channel (the conversation is set aside until resumed), then cluster-wide
admission (tenant cap, provider pause, tenant and global rates; a refused conversation is
parked under its tenant), then its channel's limits and the global cap
(``consumers.channel_gate``; refused, it gives its tenant slot back and is parked under
its channel). ``leave`` gives the slots back and wakes the next parked conversation of the
tenant and of the channel. A conversation of a tenant that already has parked ones queues
behind them without asking Redis: the tenant is known to be full.
"""

from __future__ import annotations

from collections.abc import Callable

from relayq.consumers.admission import Admission
from relayq.consumers.channel_gate import ChannelGate
from relayq.consumers.conversation import Conversation
from relayq.consumers.envelope import Envelope
from relayq.consumers.pause_state import PauseState
from relayq.consumers.tenant_gates import TenantGates
from relayq.streams.redis_client import REDIS_UNAVAILABLE

__all__ = ("SendGate",)

_REDIS_RETRY = 0.5
"""Wait before asking again when Redis could not answer the channel's admission."""


class SendGate:
    def __init__(
        self,
        admission: Admission,
        pauses: PauseState,
        requeue: Callable[[Conversation], None],
        channels: ChannelGate | None = None,
    ) -> None:
        self._admission = admission
        self._pauses = pauses
        self._requeue = requeue
        self._gates = TenantGates(requeue)
        self._channels = channels
        self._channel_gates = TenantGates(requeue)
        """Conversations parked for their head's channel (keyed by channel)."""
        self._paused: list[Conversation] = []

    async def enter(self, conversation: Conversation, envelope: Envelope) -> bool:
        """True when ``envelope`` may be sent now; else the conversation was set aside."""
        pauses = self._pauses
        if pauses.is_paused(conversation.priority, conversation.tenant) or (
            pauses.channels and self._channel_paused(envelope)
        ):
            self._paused.append(conversation)
            return False
        if not await self._admit(conversation, envelope):
            return False
        channels = self._channels
        if channels is None or not channels.applies(envelope.message):
            return True
        return await self._enter_channel(channels, conversation, envelope)

    def _channel_paused(self, envelope: Envelope) -> bool:
        channels = self._channels
        return channels is not None and self._pauses.channel_paused(
            channels.channel_of(envelope.message)
        )

    async def _enter_channel(
        self, channels: ChannelGate, conversation: Conversation, envelope: Envelope
    ) -> bool:
        """Past its tenant's admission: its channel's limits and the global cap."""
        try:
            wait = await channels.acquire(envelope)
        except REDIS_UNAVAILABLE:
            wait = _REDIS_RETRY
        if wait is None:
            return True
        if envelope.slot is not None:  # the tenant slot goes back while it waits
            self._admission.release(envelope)
        conversation.woken = False
        self._channel_gates.park_under(channels.channel_of(envelope.message), conversation, wait)
        return False

    async def _admit(self, conversation: Conversation, envelope: Envelope) -> bool:
        """The tenant's admission (cap, rates, provider pauses)."""
        admission, tenant, gates = self._admission, conversation.tenant, self._gates
        if (
            admission.enabled
            and not gates.any_parked
            and not conversation.woken
            and admission.try_admit(envelope)
        ):
            return True  # the common case: room in this worker's budgets, nobody waiting
        if admission.may_skip(envelope.message):
            return True
        woken, conversation.woken = conversation.woken, False
        if not woken and gates.is_parked(tenant):
            gates.park(conversation, None)
            return False
        if not admission.try_admit(envelope):
            refusal = await admission.admit(envelope)
            if refusal is not None:
                gates.park(conversation, refusal.wait)
                return False
        gates.wake_one(tenant)  # there may be more room: let the next one ask
        return True

    def leave(self, envelope: Envelope) -> None:
        """The attempt is over (whatever its outcome): free its slots for the next one."""
        channels = self._channels
        if channels is not None and envelope.channel_lease is not None:
            channel = channels.release(envelope)
            if channel is not None and self._channel_gates.any_parked:
                self._channel_gates.wake_one(channel)
        if envelope.slot is not None:
            self._admission.release(envelope)
            if self._gates.any_parked:
                self._gates.wake_one(envelope.message.tenant)

    def resume_paused(self) -> None:
        """Requeue every conversation set aside by a pause (the lanes check again)."""
        paused, self._paused = self._paused, []
        for conversation in paused:
            self._requeue(conversation)

    @property
    def waiting(self) -> int:
        """Conversations set aside by a pause or parked for admission."""
        return len(self._paused) + self._gates.parked + self._channel_gates.parked
