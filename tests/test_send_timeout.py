"""The send timeout: an attempt that outlives it ends as a retryable timeout (the
conversation's later messages wait, nothing else does) and, after the configured
attempts, goes to the dead-letter stream with that error."""

from __future__ import annotations

import asyncio
import time

import redis

from consumers.worker import Worker
from producers import Producer
from streams.deliverer import DeliveryResult
from streams.keys import Keys
from streams.message import Message
from streams.settings import Settings
from tests.support import dead_letters


class _HangsFor:
    """Never answers for recipients starting with ``hang-``; records the rest."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.started: list[tuple[str, float]] = []

    async def deliver(self, message: Message) -> DeliveryResult:
        self.started.append((message.id, time.monotonic()))
        if message.recipient.startswith("hang-"):
            await asyncio.sleep(3600)
        self.delivered.append(message.id)
        return DeliveryResult(provider_message_id=message.id)

    async def aclose(self) -> None:
        return None


async def _run(settings: Settings) -> tuple[_HangsFor, list[str]]:
    async with Producer(settings) as producer:
        stuck = await producer.send(
            tenant="t", conversation="a", recipient="hang-1", payload={"n": 0}
        )
        later = await producer.send(tenant="t", conversation="a", recipient="ok", payload={})
        others = [
            await producer.send(tenant="t", conversation=f"b{i}", recipient="ok", payload={})
            for i in range(20)
        ]
    deliverer = _HangsFor()
    worker = Worker(deliverer, settings, burst=True)
    await asyncio.wait_for(worker.run(), timeout=30)
    return deliverer, [stuck, later, *others]


def test_an_attempt_past_the_send_timeout_times_out_and_is_dead_lettered(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    settings = settings.replace(send_timeout=0.5, max_attempts=2, backoff_base=0.05)
    deliverer, (stuck, later, *others) = asyncio.run(_run(settings))

    assert set(others) <= set(deliverer.delivered)
    assert later in deliverer.delivered, "the conversation goes on after its dead letter"
    assert stuck not in deliverer.delivered
    starts = [at for message_id, at in deliverer.started if message_id == stuck]
    assert len(starts) == 2, "exactly max_attempts attempts"
    # The second attempt began after the first had been cut at about 0.5 s.
    assert 0.45 <= starts[1] - starts[0] < 2.0
    (letter,) = dead_letters(redis_client, keys)
    assert b"no answer within 0.5s" in letter["error"]
    assert letter["attempts"] == b"2"
