"""What a lane asks before it sends a conversation's head entry, and tells after.

``enter`` checks, in order: an operator pause of the namespace, the priority or the tenant
(the conversation is set aside until resumed), then cluster-wide admission (tenant cap,
provider pause, tenant and global rates; a refused conversation is parked under its
tenant). ``leave`` gives the tenant slot back and wakes the tenant's next parked
conversation. A conversation of a tenant that already has parked ones queues behind them
without asking Redis: the tenant is known to be full.
"""

from __future__ import annotations

from collections.abc import Callable

from relayq.consumers.admission import Admission
from relayq.consumers.conversation import Conversation
from relayq.consumers.envelope import Envelope
from relayq.consumers.pause_state import PauseState
from relayq.consumers.tenant_gates import TenantGates

__all__ = ("SendGate",)


class SendGate:
    def __init__(
        self,
        admission: Admission,
        pauses: PauseState,
        requeue: Callable[[Conversation], None],
    ) -> None:
        self._admission = admission
        self._pauses = pauses
        self._requeue = requeue
        self._gates = TenantGates(requeue)
        self._paused: list[Conversation] = []

    async def enter(self, conversation: Conversation, envelope: Envelope) -> bool:
        """True when ``envelope`` may be sent now; else the conversation was set aside."""
        if self._pauses.is_paused(conversation.priority, conversation.tenant):
            self._paused.append(conversation)
            return False
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
        """The attempt is over (whatever its outcome): free its slot for the next one."""
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
        return len(self._paused) + self._gates.parked
