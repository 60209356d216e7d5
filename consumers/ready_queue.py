"""Conversations ready for a lane: priorities strictly first, tenants round-robin within one.

Within a priority each tenant has its own FIFO of ready conversations, and tenants take
turns: a tenant with 100,000 queued messages gets one send for every send of a tenant
with 10, instead of all of its backlog going first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Sequence

from relayq.consumers.conversation import Conversation

__all__ = ("ReadyQueue",)


class _TenantRoundRobin:
    __slots__ = ("tenants",)

    def __init__(self) -> None:
        self.tenants: OrderedDict[str, deque[Conversation]] = OrderedDict()

    def put(self, conversation: Conversation) -> None:
        queue = self.tenants.get(conversation.tenant)
        if queue is None:
            self.tenants[conversation.tenant] = deque((conversation,))
        else:
            queue.append(conversation)

    def pop(self) -> Conversation:
        tenant, queue = next(iter(self.tenants.items()))
        conversation = queue.popleft()
        if queue:
            self.tenants.move_to_end(tenant)
        else:
            del self.tenants[tenant]
        return conversation


class ReadyQueue:
    def __init__(self, levels: Sequence[str]) -> None:
        """``levels``: the priority level names, highest first."""
        self._levels = {level: _TenantRoundRobin() for level in levels}
        self._order = list(self._levels.values())
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put(self, conversation: Conversation) -> None:
        self._levels[conversation.priority].put(conversation)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def get_nowait(self) -> Conversation | None:
        for level in self._order:
            if level.tenants:
                return level.pop()
        return None

    async def get(self) -> Conversation:
        while True:
            conversation = self.get_nowait()
            if conversation is not None:
                return conversation
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_next()
                raise

    def _wake_next(self) -> None:
        if any(level.tenants for level in self._order) and self._waiters:
            self._waiters.popleft().set_result(None)
