"""The asyncio producer: ``send`` one message, ``send_many`` a batch in pipelined round trips."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from relayq.producers.direct_send import fall_back, fallback_for, send_direct, send_direct_many
from relayq.producers.enqueue_command import enqueue_command, parse_reply, plan_calls
from relayq.producers.event_reader import block_ms as _block_ms
from relayq.producers.event_reader import read_events
from relayq.producers.producer_base import BATCH_SIZE, ProducerBase
from relayq.producers.schedule_book import ScheduleBook
from relayq.producers.send_batch import (
    PendingCommand,
    finish_batch,
    record_batch,
    record_replies,
)
from relayq.producers.send_request import BatchResults, SendRequest, SendResult, prepare
from relayq.producers.send_span import SendSpan
from relayq.streams.batch import check_batch_id, new_batch_id
from relayq.streams.deliverer import Deliverer
from relayq.streams.errors import RedisUnavailableError
from relayq.streams.namespace_shape import check_namespace
from relayq.streams.outcome_events import OutcomeEvent
from relayq.streams.redis_client import (
    REDIS_UNAVAILABLE,
    create_client,
    redis_address,
    redis_errors,
)
from relayq.streams.schedule import Schedule
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from relayq.producers.send_fields import ScheduleFields, SendFields

__all__ = ("Producer",)


class Producer(ProducerBase):
    """Sends messages into relayq. Safe to share between tasks of one event loop."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Redis | None = None,
        fallback: Deliverer | None = None,
        direct: bool | None = None,
    ) -> None:
        """``fallback``: a deliverer ``send_or_deliver`` uses when Redis cannot be reached
        (opt-in; such a message skips the queue: no ordering, limits, retries or DLQ).

        ``direct`` (default: ``settings.direct_send``, ``RELAYQ_DIRECT_SEND``): every send
        goes through ``fallback`` (else the deliverer the settings name, which the producer
        closes) and Redis is not touched; schedules still need Redis.
        """
        super().__init__(settings, direct=direct)
        self._own_deliverer = self._direct_deliverer(fallback)
        self.fallback = fallback if fallback is not None else self._own_deliverer
        self._owns_client = client is None
        self._client: Redis | None = None
        if client is not None or not self.direct:
            self._open(client if client is not None else create_client(self.settings))

    def _open(self, client: Redis) -> Redis:
        self._client = client
        self._address = redis_address(client)
        self._scripts = Scripts(client)
        self._schedules = ScheduleBook(client, self.keys, self.settings)
        return client

    def _redis(self) -> Redis:
        """The client, made on first use when direct send is on."""
        return (
            self._client if self._client is not None else self._open(create_client(self.settings))
        )

    def _redis_errors(self) -> AbstractContextManager[None]:
        """``redis_errors`` for this producer's server (see ``streams.redis_client``)."""
        self._redis()
        return redis_errors(self._address)

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis connections and the deliverer this producer made; idempotent."""
        try:
            if self._own_deliverer is not None:
                await self._own_deliverer.aclose()
        finally:
            if self._owns_client and self._client is not None:
                await self._client.aclose()

    async def _ensure_checked(self) -> None:
        if not self._checked:
            await check_namespace(self._redis(), self.keys)
            self._checked = True

    async def send(self, **fields: Unpack[SendFields]) -> str:
        """Enqueue one message and return its message id; with direct send on, deliver it
        instead (and return its id).

        Raises ValidationError (nothing written), RedisUnavailableError, or DirectSendError
        (direct send on, the delivery failed).
        """
        result = await self._send_request(self._request(fields))
        assert result.message_id is not None  # a failed send raises
        return result.message_id

    async def _send_request(self, request: SendRequest) -> SendResult:
        with SendSpan(request) as span:
            if self.direct:
                assert self.fallback is not None  # set whenever direct is
                result = await send_direct(self.fallback, request, self.settings, trace=span.traced)
            else:
                result = SendResult(await self._send_one(request, trace=span.traced))
            span.sent(result)
        return result

    async def schedule(
        self,
        name: str,
        *,
        every: float | dt.timedelta | None = None,
        cron: str | None = None,
        **fields: Unpack[ScheduleFields],
    ) -> Schedule:
        """Create or replace repeatable message ``name``: it is enqueued every ``every``
        seconds, or at each time of the five-field ``cron`` expression (UTC), exactly once
        per occurrence however many workers run. ``fields`` are those of ``send`` but
        ``dedup_key``, ``delay`` and ``not_before``."""
        with self._redis_errors():
            await self._ensure_checked()
            return await self._schedules.add(name, every=every, cron=cron, **fields)

    async def schedules(self) -> list[tuple[Schedule, int]]:
        """Every schedule and its next due time (Unix ms)."""
        with self._redis_errors():
            return await self._schedules.list()

    async def events(
        self, after: str | None = None, *, follow: bool = True, block: float = 1.0
    ) -> AsyncIterator[OutcomeEvent]:
        """Outcome events (delivered, dead_lettered, retrying, throttled), oldest first per
        partition: ``async for event in producer.events(): ...``.

        ``after``: an event's ``cursor`` (resume just after it), ``"start"`` (every event
        still kept), or None (only events from now on). ``follow``: wait for new events
        forever (checking every ``block`` seconds), else stop at the end. Store the last
        handled event's ``cursor`` to resume after a restart without missing one.
        """
        with self._redis_errors():
            await self._ensure_checked()
            reader = read_events(
                self._redis(), self.keys, after=after, follow=follow, block_ms=_block_ms(block)
            )
            async for event in reader:
                yield event

    async def unschedule(self, name: str) -> bool:
        """Remove schedule ``name``; False if there was none."""
        with self._redis_errors():
            return await self._schedules.remove(name)

    async def send_or_deliver(self, **fields: Unpack[SendFields]) -> SendResult:
        """Like ``send``, but when Redis cannot be reached and a ``fallback`` deliverer is
        configured, deliver the message directly and say so (``SendResult.direct``).

        Raises ValidationError; RedisUnavailableError when there is no fallback (or Redis
        timed out, so the message may be enqueued after all); DirectSendError when the
        direct delivery failed too.
        """
        request = self._request(fields)
        try:
            return await self._send_request(request)
        except RedisUnavailableError as exc:
            return await fall_back(fallback_for(self.fallback, exc), request, self.settings, exc)

    async def _send_one(self, request: SendRequest, *, trace: bool) -> str:
        prepared = prepare(request, self.settings, trace=trace)
        command = enqueue_command(self.keys, prepared, self._enqueue_options)
        with redis_errors(self._address):
            await self._ensure_checked()
            reply = await self._scripts.enqueue(keys=command.keys, args=command.args)
        return parse_reply(reply)[0]

    async def send_many(
        self, requests: Iterable[SendRequest], *, batch_id: str | None = None
    ) -> BatchResults:
        """Enqueue a batch (with direct send on, deliver each in turn); one result per
        request, in order, and the batch's id (``.batch_id``: follow its progress with
        ``relayq batch show ID``). A bad item fails alone. ``batch_id``: add to the batch
        an earlier call made (a large send in chunks); by default a new batch."""
        batch_id = new_batch_id() if batch_id is None else check_batch_id(batch_id)
        if self.direct:
            assert self.fallback is not None
            direct = await send_direct_many(self.fallback, requests, self.settings)
            return BatchResults(direct, batch_id)
        created_ms = time.time_ns() // 1_000_000
        results, pending = self._prepare_batch(requests, batch_id)
        with self._redis_errors():
            await self._ensure_checked()
            for start in range(0, len(pending), BATCH_SIZE):
                await self._execute_batch(pending[start : start + BATCH_SIZE], results)
        finished = finish_batch(results)
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                record_batch(pipe, self.keys.batch(batch_id), created_ms, finished, pending)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            self._batch_written(batch_id, exc)
        return BatchResults(finished, batch_id)

    async def _execute_batch(
        self, batch: list[PendingCommand], results: list[SendResult | None]
    ) -> None:
        calls = plan_calls(batch)
        async with self._redis().pipeline(transaction=False) as pipe:
            for call in calls:
                script = self._scripts.enqueue_many if call.many else self._scripts.enqueue
                await script(keys=call.keys, args=call.args, client=pipe)
            replies = await pipe.execute(raise_on_error=False)
        record_replies(calls, replies, results)
