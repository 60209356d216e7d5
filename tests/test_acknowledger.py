"""Acknowledgements survive a flush that is cancelled mid-flight (a drain's timeout, a
shutdown): they are flushed later, never dropped (a dropped ack leaves a delivered entry
pending for good under a live owner, which then never drains)."""

from __future__ import annotations

import asyncio
import time

import redis

from relayq.consumers.acknowledger import Acknowledger
from relayq.consumers.envelope import Envelope, PartitionState
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message, Priority
from relayq.streams.redis_client import create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

STREAM = "{relayq-test:0}:normal"


def _envelope(entry_id: bytes) -> Envelope:
    state = PartitionState(partition=0, token="t", lease_deadline=time.monotonic() + 60)
    message = Message(
        id="01J0000000000000000000000",
        tenant="t",
        conversation="c",
        recipient="r",
        priority=Priority.NORMAL,
        payload=b"{}",
        created_ms=0,
    )
    return Envelope(state=state, stream=STREAM, entry_id=entry_id, message=message)


def test_a_cancelled_flush_keeps_its_acks_for_the_next_one(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    ids: list[bytes] = [redis_client.xadd(STREAM, {b"m": b"x"}) for _ in range(3)]  # type: ignore[misc]
    redis_client.xreadgroup(GROUP, "w1", {STREAM: ">"})
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 3

    async def scenario() -> None:
        client = create_client(settings)
        try:
            acks = Acknowledger(client, Scripts(client), keys, settings, "w1")
            for entry_id in ids:
                acks.ack(_envelope(entry_id))
            redis_client.client_pause(1500, all=False)  # writes wait: the XACKs hang
            flush = asyncio.create_task(acks.flush())
            await asyncio.sleep(0.3)  # the XACK pipeline is waiting on the paused Redis
            assert not flush.done()
            flush.cancel()
            await asyncio.gather(flush, return_exceptions=True)
            redis_client.client_unpause()
            await acks.drain(timeout=5)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0
