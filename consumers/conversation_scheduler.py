"""Conversations in parallel, each strictly one message at a time, higher priorities first.

Every (priority, tenant, conversation) with entries in memory is a Conversation holding
its entries in stream order. A conversation is either idle (no entries), ready (waiting in
the ready queue for a lane), running (a lane is delivering its head entry) or backing off
(its head failed and waits; the rest of the conversation waits behind it, nothing else
does). A fixed pool of lanes (``concurrency``) pulls ready conversations: no task is
created per message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from consumers.envelope import Envelope, PartitionState
from streams.message import PRIORITY_ORDER, Priority

__all__ = ("Conversation", "ConversationScheduler", "ProcessEntry")

ProcessEntry = Callable[[Envelope], Awaitable[float | None]]
"""Delivers an envelope's message: None when done with it, or seconds to wait and retry."""

_YIELD_EVERY = 64


class Conversation:
    __slots__ = ("entries", "key", "priority", "state")

    def __init__(
        self, key: tuple[str, str, str], priority: Priority, state: PartitionState
    ) -> None:
        self.key = key
        self.priority = priority
        self.state = state
        self.entries: deque[Envelope] = deque()


class _ReadyQueue:
    """Conversations waiting for a lane, one FIFO per priority, highest served first."""

    def __init__(self) -> None:
        self._queues: dict[Priority, deque[Conversation]] = {p: deque() for p in PRIORITY_ORDER}
        self._order = [self._queues[p] for p in PRIORITY_ORDER]
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put(self, conversation: Conversation) -> None:
        self._queues[conversation.priority].append(conversation)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def get_nowait(self) -> Conversation | None:
        for queue in self._order:
            if queue:
                return queue.popleft()
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
        if any(self._order) and self._waiters:
            self._waiters.popleft().set_result(None)


class ConversationScheduler:
    def __init__(self, process: ProcessEntry, concurrency: int, buffer_limit: int) -> None:
        self._process = process
        self._concurrency = concurrency
        self._buffer_limit = buffer_limit
        self._conversations: dict[tuple[str, str, str], Conversation] = {}
        self._ready = _ReadyQueue()
        self._running = 0

    def add(self, envelope: Envelope) -> None:
        """Queue an entry behind the earlier entries of its conversation."""
        message = envelope.message
        key = (message.priority.value, message.tenant, message.conversation)
        conversation = self._conversations.get(key)
        if conversation is None or conversation.state is not envelope.state:
            conversation = Conversation(key, message.priority, envelope.state)
            self._conversations[key] = conversation
            conversation.entries.append(envelope)
            self._ready.put(conversation)
        else:
            conversation.entries.append(envelope)
        state = envelope.state
        state.buffered += 1
        if state.buffered >= self._buffer_limit:
            state.room.clear()

    async def wait_for_room(self, state: PartitionState) -> bool:
        """Back-pressure for a partition's reader: wait while too much of it is in memory.

        Returns whether the partition is still ours to read.
        """
        while state.buffered >= self._buffer_limit and state.active:
            await state.room.wait()
        return state.active

    def drop_partition(self, state: PartitionState) -> int:
        """Forget the queued entries of a partition being given up; returns how many.

        Entries stay pending in Redis for the next owner. In-flight ones finish on their own.
        """
        state.active = False
        state.room.set()
        dropped = 0
        for key, conversation in list(self._conversations.items()):
            if conversation.state is state:
                del self._conversations[key]
                dropped += len(conversation.entries)
        return dropped

    @property
    def buffered(self) -> int:
        return sum(len(c.entries) for c in self._conversations.values())

    @property
    def idle(self) -> bool:
        return not self._conversations and self._running == 0

    async def run(self) -> None:
        """Run the lanes until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._lane())

    async def _lane(self) -> None:
        served = 0
        while True:
            conversation = self._ready.get_nowait() or await self._ready.get()
            served += 1
            if served % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a deliverer that never suspends must not starve readers
            state = conversation.state
            if not state.active or not conversation.entries:
                continue
            envelope = conversation.entries[0]
            self._running += 1
            state.in_flight += 1
            try:
                retry_in = await self._process(envelope)
            finally:
                self._running -= 1
                state.in_flight -= 1
            if retry_in is not None:
                asyncio.get_running_loop().call_later(retry_in, self._resume, conversation)
                continue
            self._finish_head(conversation)

    def _finish_head(self, conversation: Conversation) -> None:
        conversation.entries.popleft()
        state = conversation.state
        state.buffered -= 1
        if state.buffered < self._buffer_limit:
            state.room.set()
        if not state.active:
            return
        if conversation.entries:
            self._ready.put(conversation)
        elif self._conversations.get(conversation.key) is conversation:
            del self._conversations[conversation.key]

    def _resume(self, conversation: Conversation) -> None:
        if conversation.state.active and self._conversations.get(conversation.key) is conversation:
            self._ready.put(conversation)
