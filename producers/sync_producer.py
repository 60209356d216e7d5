"""The blocking producer, for services that are not asyncio: the same API as ``Producer``,
the same logic (``producers.producer_base``, ``send_span``, ``send_batch``, ``direct_send``);
only the calls to Redis and to the deliverer block instead of being awaited."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING

import redis

from relayq.producers.direct_send import (
    BlockingFallback,
    fall_back,
    fallback_for,
    send_direct,
    send_direct_many,
)
from relayq.producers.enqueue_command import enqueue_command, parse_reply, plan_calls
from relayq.producers.event_reader import block_ms as _block_ms
from relayq.producers.event_reader import read_events_sync
from relayq.producers.producer_base import BATCH_SIZE, ProducerBase
from relayq.producers.schedule_book import SyncScheduleBook
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
from relayq.streams.namespace_shape import check_namespace_sync
from relayq.streams.outcome_events import OutcomeEvent
from relayq.streams.redis_client import (
    REDIS_UNAVAILABLE,
    create_sync_client,
    redis_address,
    redis_errors,
)
from relayq.streams.schedule import Schedule
from relayq.streams.scripts import script_source
from relayq.streams.settings import Settings

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from relayq.producers.send_fields import ScheduleFields, SendFields

__all__ = ("SyncProducer",)


class SyncProducer(ProducerBase):
    """Sends messages into relayq from blocking code; thread-safe (redis-py pools)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: redis.Redis | None = None,
        fallback: Deliverer | None = None,
        direct: bool | None = None,
    ) -> None:
        """``fallback`` and ``direct``: as for ``Producer``. The producer runs the (async)
        deliverer on an event loop of its own and closes it (``aclose``) in ``close()``."""
        super().__init__(settings, direct=direct)
        deliverer = fallback if fallback is not None else self._direct_deliverer(fallback)
        self._fallback = BlockingFallback(deliverer) if deliverer is not None else None
        self._owns_client = client is None
        self._client: redis.Redis | None = None
        if client is not None or not self.direct:
            self._open(client if client is not None else create_sync_client(self.settings))

    def _open(self, client: redis.Redis) -> redis.Redis:
        self._client = client
        self._address = redis_address(client)
        self._enqueue = client.register_script(script_source("enqueue_8"))
        self._enqueue_many = client.register_script(script_source("enqueue_many_4"))
        self._schedules = SyncScheduleBook(client, self.keys, self.settings)
        return client

    def _redis(self) -> redis.Redis:
        """The client, made on first use when direct send is on."""
        if self._client is not None:
            return self._client
        return self._open(create_sync_client(self.settings))

    def _redis_errors(self) -> AbstractContextManager[None]:
        """``redis_errors`` for this producer's server (see ``streams.redis_client``)."""
        self._redis()
        return redis_errors(self._address)

    @property
    def fallback(self) -> Deliverer | None:
        return self._fallback.deliverer if self._fallback is not None else None

    def __enter__(self) -> SyncProducer:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the Redis connections this producer opened, and the deliverer; idempotent."""
        try:
            if self._fallback is not None:
                self._fallback.close()
        finally:
            if self._owns_client and self._client is not None:
                self._client.close()

    def _ensure_checked(self) -> None:
        if not self._checked:
            check_namespace_sync(self._redis(), self.keys)
            self._checked = True

    def send(self, **fields: Unpack[SendFields]) -> str:
        """Enqueue one message and return its message id (see ``Producer.send``)."""
        result = self._send_request(self._request(fields))
        assert result.message_id is not None  # a failed send raises
        return result.message_id

    def _send_request(self, request: SendRequest) -> SendResult:
        with SendSpan(request) as span:
            if self.direct:
                assert self._fallback is not None  # set whenever direct is
                result = self._fallback.run(
                    send_direct(self._fallback.deliverer, request, self.settings, trace=span.traced)
                )
            else:
                result = SendResult(self._send_one(request, trace=span.traced))
            span.sent(result)
        return result

    def schedule(
        self,
        name: str,
        *,
        every: float | dt.timedelta | None = None,
        cron: str | None = None,
        **fields: Unpack[ScheduleFields],
    ) -> Schedule:
        """Create or replace repeatable message ``name`` (see ``Producer.schedule``)."""
        with self._redis_errors():
            self._ensure_checked()
            return self._schedules.add(name, every=every, cron=cron, **fields)

    def schedules(self) -> list[tuple[Schedule, int]]:
        """Every schedule and its next due time (Unix ms)."""
        with self._redis_errors():
            return self._schedules.list()

    def events(
        self, after: str | None = None, *, follow: bool = True, block: float = 1.0
    ) -> Iterator[OutcomeEvent]:
        """Outcome events, as ``Producer.events`` (a blocking iterator)."""
        with self._redis_errors():
            self._ensure_checked()
            yield from read_events_sync(
                self._redis(), self.keys, after=after, follow=follow, block_ms=_block_ms(block)
            )

    def unschedule(self, name: str) -> bool:
        """Remove schedule ``name``; False if there was none."""
        with self._redis_errors():
            return self._schedules.remove(name)

    def send_or_deliver(self, **fields: Unpack[SendFields]) -> SendResult:
        """Like ``send``, but deliver directly through the ``fallback`` when Redis cannot
        be reached (see ``Producer.send_or_deliver``; the same errors)."""
        request = self._request(fields)
        try:
            return self._send_request(request)
        except RedisUnavailableError as exc:
            fallback = fallback_for(self.fallback, exc)
            assert self._fallback is not None
            return self._fallback.run(fall_back(fallback, request, self.settings, exc))

    def _send_one(self, request: SendRequest, *, trace: bool) -> str:
        prepared = prepare(request, self.settings, trace=trace)
        command = enqueue_command(self.keys, prepared, self._enqueue_options)
        with redis_errors(self._address):
            self._ensure_checked()
            reply = self._enqueue(keys=command.keys, args=command.args)
        return parse_reply(reply)[0]

    def send_many(
        self, requests: Iterable[SendRequest], *, batch_id: str | None = None
    ) -> BatchResults:
        """Enqueue a batch (see ``Producer.send_many``)."""
        batch_id = new_batch_id() if batch_id is None else check_batch_id(batch_id)
        if self._fallback is not None and self.direct:
            fallback = self._fallback
            direct = send_direct_many(fallback.deliverer, requests, self.settings)
            return BatchResults(fallback.run(direct), batch_id)
        created_ms = time.time_ns() // 1_000_000
        results, pending = self._prepare_batch(requests, batch_id)
        with self._redis_errors():
            self._ensure_checked()
            for start in range(0, len(pending), BATCH_SIZE):
                self._execute_batch(pending[start : start + BATCH_SIZE], results)
        finished = finish_batch(results)
        try:
            with self._redis().pipeline(transaction=False) as pipe:
                record_batch(pipe, self.keys.batch(batch_id), created_ms, finished, pending)
                pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            self._batch_written(batch_id, exc)
        return BatchResults(finished, batch_id)

    def _execute_batch(self, batch: list[PendingCommand], results: list[SendResult | None]) -> None:
        calls = plan_calls(batch)
        with self._redis().pipeline(transaction=False) as pipe:
            for call in calls:
                script = self._enqueue_many if call.many else self._enqueue
                script(keys=call.keys, args=call.args, client=pipe)
            replies = pipe.execute(raise_on_error=False)
        record_replies(calls, replies, results)
