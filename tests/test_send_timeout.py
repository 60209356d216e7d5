"""The send timeout: an attempt that outlives it ends as a retryable timeout (the
conversation's later messages wait, nothing else does) and, after the configured
attempts, goes to the dead-letter stream with that error."""

from __future__ import annotations

import asyncio
import time

import redis

from relayq.consumers.worker import Worker
from relayq.producers import Producer
from relayq.streams.deliverer import DeliveryResult, check_send_allowed
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.settings import Settings
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


class _TimedDeliverer:
    """Counts attempts and records deliveries; ``_provider`` is the timing under test."""

    def __init__(self, send_timeout: float) -> None:
        self.send_timeout = send_timeout
        self.starts = 0
        self.delivered: list[str] = []

    async def deliver(self, message: Message) -> DeliveryResult:
        self.starts += 1
        await self._provider()
        self.delivered.append(message.id)
        return DeliveryResult()

    async def _provider(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class _SlowToConnect(_TimedDeliverer):
    """Takes 0.6 send timeouts before the request leaves (a pooled connection or a connect
    was waited for), then the provider answers 0.6 send timeouts later."""

    async def _provider(self) -> None:
        await asyncio.sleep(0.6 * self.send_timeout)
        check_send_allowed()  # the request leaves the process now
        await asyncio.sleep(0.6 * self.send_timeout)


class _AnsweredWhileTheLoopIsBusy(_TimedDeliverer):
    """The provider answers at 0.5 send timeouts, but from 0.2 to 1.2 send timeouts the
    event loop is busy elsewhere (a blocking callback, as on a cold start on 2 cores)."""

    async def _provider(self) -> None:
        loop, timeout = asyncio.get_running_loop(), self.send_timeout
        answer: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.5 * timeout, answer.set_result, None)
        loop.call_later(0.2 * timeout, time.sleep, 1.0 * timeout)
        await answer


async def _deliver_one(settings: Settings, deliverer: _TimedDeliverer) -> str:
    async with Producer(settings) as producer:
        message_id = await producer.send(tenant="t", conversation="a", recipient="r", payload={})
    await asyncio.wait_for(Worker(deliverer, settings, burst=True).run(), timeout=30)
    return message_id


def test_the_send_timeout_counts_from_when_the_request_leaves(settings: Settings) -> None:
    """1.2 send timeouts in all, but only 0.6 after the request left: not a timeout (it
    was one, and the provider got the message a second time on the retry)."""
    settings = settings.replace(send_timeout=0.5, max_attempts=3)
    deliverer = _SlowToConnect(settings.send_timeout)
    message_id = asyncio.run(_deliver_one(settings, deliverer))
    assert deliverer.delivered == [message_id]
    assert deliverer.starts == 1


def test_an_answer_that_came_while_the_loop_was_busy_is_not_cut_off(
    settings: Settings,
) -> None:
    settings = settings.replace(send_timeout=0.5, max_attempts=3)
    deliverer = _AnsweredWhileTheLoopIsBusy(settings.send_timeout)
    message_id = asyncio.run(_deliver_one(settings, deliverer))
    assert deliverer.delivered == [message_id]
    assert deliverer.starts == 1
