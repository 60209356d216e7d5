"""Stall marks: every delivery attempt is counted in Redis before its request leaves.

An attempt that starts and never finishes (its worker was killed, ran out of memory, hit a
crashing deliverer, or was cut off by shutdown mid-send) leaves its mark in
``{ns:P}:stalls``; the next owner reads the marks of the entries it reclaims, and each one
is a stall. A finished attempt takes its mark back: with its acknowledgement (HDEL, in the
Acknowledger's pipeline), with its failure record (HINCRBY -1, see DeliveryRunner), in the
dead-letter script (HDEL), or through ``unmark`` when it ended with no outcome (throttled,
held back by the fence).

The group's delivery counter in the PEL is no substitute: XAUTOCLAIM bumps it for every
pending entry, including the read-ahead a worker held and never started, so a few clean
hand-overs would dead-letter messages that were never tried.

Marks are batched: the attempts that start in one event-loop turn share one pipelined
script call per partition, and each waits for it, so no request leaves unmarked.

The same call checks each message's outcome record: one already recorded as delivered is
not marked, and ``started`` says so (the caller must not send it again).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from redis.asyncio import Redis

from relayq.consumers.envelope import Envelope
from relayq.streams.keys import Keys
from relayq.streams.script_pipeline import run_script_calls
from relayq.streams.scripts import Scripts

__all__ = ("StallMarks", "stall_count")


def stall_count(mark: bytes | None) -> int:
    """Stalls recorded for an entry that nobody is sending now (its owner just changed)."""
    try:
        return max(0, int(mark or 0))
    except ValueError:
        return 0


class StallMarks:
    def __init__(
        self, client: Redis, scripts: Scripts, keys: Keys, *, check_delivered: bool = True
    ) -> None:
        self._client = client
        self._script = scripts.mark_started
        self._keys = keys
        self._check = b"1" if check_delivered else b"0"
        self._batch: defaultdict[int, list[bytes | str]] | None = None
        self._written: asyncio.Future[set[bytes]] | None = None
        self._writing: set[asyncio.Task[set[bytes]]] = set()

    async def started(self, envelope: Envelope) -> bool:
        """Return once ``envelope``'s attempt is counted in Redis: True, or False when its
        message is already recorded as delivered (not marked: do not send it). Raises what
        Redis raised."""
        if self._batch is None or self._written is None:
            loop = asyncio.get_running_loop()
            self._batch, self._written = defaultdict(lambda: [self._check]), loop.create_future()
            loop.call_soon(self._write_batch)
        self._batch[envelope.state.partition] += (envelope.entry_id, envelope.message.id)
        return envelope.entry_id not in await self._written

    async def unmark(self, envelope: Envelope) -> None:
        """The attempt ended without reaching the provider, or without an outcome to record."""
        await self._client.hincrby(
            self._keys.stalls(envelope.state.partition), envelope.entry_id, -1
        )

    def _write_batch(self) -> None:
        batch, written = self._batch, self._written
        self._batch = self._written = None
        assert batch is not None and written is not None
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        task.add_done_callback(lambda done: _settle(written, done))

    async def _write(self, batch: dict[int, list[bytes | str]]) -> set[bytes]:
        """The entry ids of the batch whose messages are already delivered."""
        script, keys = self._script, self._keys
        calls = [(script, (keys.stalls(p), keys.outcomes(p)), args) for p, args in batch.items()]
        replies = await run_script_calls(self._client, calls)  # one call per partition
        return {entry_id for reply in replies for entry_id in reply}


def _settle(written: asyncio.Future[set[bytes]], done: asyncio.Task[set[bytes]]) -> None:
    if written.done():
        return
    if done.cancelled():
        written.cancel()
    elif (error := done.exception()) is not None:
        written.set_exception(error)
    else:
        written.set_result(done.result())
