"""Conversations waiting for their tenant's admission, parked off the lanes.

A conversation refused admission is parked under its tenant, behind the tenant's other
parked conversations (FIFO). One is woken when a slot of that tenant is released by this
worker, or when the tenant's timer fires: after the refusal's wait, or every
``poll_interval`` while the tenant is at its cap (slots freed by other workers are seen that
way). The timer stays armed while anything is parked, so nothing waits forever. Other
tenants never wait behind a parked one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from relayq.consumers.conversation import Conversation

__all__ = ("TenantGates",)


class TenantGates:
    def __init__(
        self, requeue: Callable[[Conversation], None], poll_interval: float = 0.05
    ) -> None:
        self._requeue = requeue
        self._poll_interval = poll_interval
        self._parked: dict[str, deque[Conversation]] = {}
        self._timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}

    @property
    def any_parked(self) -> bool:
        """Whether any conversation is parked (else no tenant has anyone to wake)."""
        return bool(self._parked)

    def is_parked(self, tenant: str) -> bool:
        """Whether conversations of ``tenant`` already wait (newcomers queue behind them)."""
        return tenant in self._parked

    def park(self, conversation: Conversation, wait: float | None) -> None:
        """Hold ``conversation`` until its tenant may send again (``wait`` s, None = a slot)."""
        self.park_under(conversation.tenant, conversation, wait)

    def park_under(self, name: str, conversation: Conversation, wait: float | None) -> None:
        """Hold ``conversation`` under ``name`` (a tenant, or a channel for the channel
        gates) until woken, at the latest after ``wait`` s (None = the poll interval)."""
        self._parked.setdefault(name, deque()).append(conversation)
        self._arm(name, self._poll_interval if wait is None else max(wait, 0.001))

    def wake_one(self, tenant: str) -> None:
        """Requeue the tenant's longest-parked conversation, if any."""
        queue = self._parked.get(tenant)
        if not queue:
            return
        conversation = queue.popleft()
        if not queue:
            del self._parked[tenant]
            timer = self._timers.pop(tenant, None)
            if timer is not None:
                timer[1].cancel()
        conversation.woken = True
        self._requeue(conversation)

    def _arm(self, tenant: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        current = self._timers.get(tenant)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        self._timers[tenant] = (due, loop.call_at(due, self._fire, tenant))

    def _fire(self, tenant: str) -> None:
        self._timers.pop(tenant, None)
        self.wake_one(tenant)
        if tenant in self._parked:
            self._arm(tenant, self._poll_interval)

    @property
    def parked(self) -> int:
        return sum(len(q) for q in self._parked.values())
