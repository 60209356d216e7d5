"""Conversations in parallel, each strictly one message at a time, higher priorities first.

Every (priority, tenant, conversation) with entries in memory is a Conversation holding
its entries in stream order. A conversation is either idle (no entries), ready (waiting in
the ready queue for a lane), running (a lane is delivering its head entry) or backing off
(its head failed and waits; the rest of the conversation waits behind it, nothing else
does) or set aside by the SendGate (paused by an operator, or parked until its tenant is
admitted again). A fixed pool of lanes (``concurrency``) pulls ready conversations,
higher priorities first and tenants in turn within a priority: no task is created per
message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from relayq.consumers.attempt_watchdog import remember_task
from relayq.consumers.conversation import Conversation, ConversationKey
from relayq.consumers.envelope import Envelope, PartitionState
from relayq.consumers.ready_queue import ReadyQueue
from relayq.consumers.send_gate import SendGate

__all__ = ("ConversationScheduler", "ProcessEntry")

ProcessEntry = Callable[[Envelope], Awaitable[float | None]]
"""Delivers an envelope's message: None when done with it, or seconds to wait and retry."""

_YIELD_EVERY = 8
"""Conversations a lane serves before it lets the event loop poll I/O even if none of its
sends suspended. With a deliverer that never suspends every lane runs on, and one loop
turn serves lanes x this many sends: 64 x 64 held the loop for ~50 ms, so Redis replies
(admission rounds, acks, lease renewals) waited that long; 64 x 8 is ~7 ms."""


class ConversationScheduler:
    def __init__(
        self,
        process: ProcessEntry,
        concurrency: int,
        buffer_limit: int,
        gate: Callable[[Callable[[Conversation], None]], SendGate],
        levels: Sequence[str],
    ) -> None:
        """``gate`` builds the SendGate, given how to put a conversation back in line;
        ``levels`` are the priority level names, highest first."""
        self._process = process
        self._concurrency = concurrency
        self._buffer_limit = buffer_limit
        self._conversations: dict[ConversationKey, Conversation] = {}
        self._ready = ReadyQueue(levels)
        self._running = 0
        self._gate = gate(self._resume)

    def add(self, envelope: Envelope) -> None:
        """Queue an entry behind the earlier entries of its conversation."""
        message = envelope.message
        key = (message.priority, message.tenant, message.conversation)
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

    def resume_paused(self) -> None:
        """An operator pause was lifted: requeue what a pause set aside (checked again)."""
        self._gate.resume_paused()

    @property
    def waiting(self) -> int:
        """Conversations set aside by a pause or parked for admission."""
        return self._gate.waiting

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
        remember_task()
        served = 0
        while True:
            conversation = self._ready.get_nowait() or await self._ready.get()
            served += 1
            if served % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a deliverer that never suspends must not starve readers
            if not conversation.state.active or not conversation.entries:
                continue
            envelope = conversation.entries[0]
            wait = envelope.not_before - time.monotonic()
            if wait > 0:  # a backoff recovered from Redis: hold only this conversation
                asyncio.get_running_loop().call_later(wait, self._resume, conversation)
                continue
            if await self._gate.enter(conversation, envelope):
                await self._deliver_head(conversation, envelope)

    async def _deliver_head(self, conversation: Conversation, envelope: Envelope) -> None:
        state = conversation.state
        if not state.active:  # given up while admission was asked
            self._gate.leave(envelope)
            return
        self._running += 1
        state.in_flight += 1
        try:
            retry_in = await self._process(envelope)
        finally:
            self._running -= 1
            state.in_flight -= 1
            self._gate.leave(envelope)
        if retry_in is not None:
            asyncio.get_running_loop().call_later(retry_in, self._resume, conversation)
        else:
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
