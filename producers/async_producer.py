"""The asyncio producer: ``send`` one message, ``send_many`` a batch in pipelined round trips."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import redis.exceptions
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from relayq.producers.direct_send import deliver_directly, fallback_for
from relayq.producers.enqueue_command import EnqueueCommand, enqueue_command, parse_reply
from relayq.producers.schedule_book import ScheduleBook
from relayq.producers.send_batch import finish_batch, prepare_batch
from relayq.producers.send_request import SendRequest, SendResult, prepare
from relayq.streams.deliverer import Deliverer
from relayq.streams.errors import RedisUnavailableError
from relayq.streams.keys import Keys
from relayq.streams.redis_client import (
    check_partitions,
    create_client,
    redis_address,
    redis_failure,
)
from relayq.streams.schedule import Schedule
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings
from relayq.streams.telemetry import tracer, tracing_enabled

__all__ = ("Producer",)

_BATCH = 1000


class Producer:
    """Sends messages into relayq. Safe to share between tasks of one event loop."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Redis | None = None,
        fallback: Deliverer | None = None,
    ) -> None:
        """``fallback``: a deliverer ``send_or_deliver`` uses when Redis cannot be reached
        (opt-in; such a message skips the queue: no ordering, limits, retries or DLQ)."""
        self.settings = settings if settings is not None else Settings.from_env()
        self.fallback = fallback
        self.keys = Keys(self.settings.namespace, self.settings.partitions)
        self._owns_client = client is None
        self._client = client if client is not None else create_client(self.settings)
        self._address = redis_address(self._client)
        self._scripts = Scripts(self._client)
        self._window_ms = round(self.settings.dedup_window * 1000)
        self._schedules = ScheduleBook(self._client, self.keys, self.settings)
        self._checked = False

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis connections this producer opened; idempotent."""
        if self._owns_client:
            await self._client.aclose()

    async def _ensure_checked(self) -> None:
        if not self._checked:
            await check_partitions(self._client, self.keys)
            self._checked = True

    async def send(self, **fields: Any) -> str:
        """Enqueue one message (fields of SendRequest) and return its message id.

        Raises ValidationError (nothing written) or RedisUnavailableError.
        """
        request = SendRequest(**fields)
        if not tracing_enabled():
            return await self._send_one(request)
        with tracer().start_as_current_span("relayq send", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "relayq")
            span.set_attribute("relayq.tenant", request.tenant)
            span.set_attribute("relayq.conversation", request.conversation)
            if request.sender is not None:
                span.set_attribute("relayq.sender", request.sender)
            message_id = await self._send_one(request, trace=True)
            span.set_attribute("messaging.message.id", message_id)
            return message_id

    async def schedule(
        self,
        name: str,
        *,
        every: float | dt.timedelta | None = None,
        cron: str | None = None,
        **fields: Any,
    ) -> Schedule:
        """Create or replace repeatable message ``name``: it is enqueued every ``every``
        seconds, or at each time of the five-field ``cron`` expression (UTC), exactly once
        per occurrence however many workers run. ``fields`` are those of ``send``."""
        async with _redis_errors(self._address):
            await self._ensure_checked()
            return await self._schedules.add(name, every=every, cron=cron, **fields)

    async def schedules(self) -> list[tuple[Schedule, int]]:
        """Every schedule and its next due time (Unix ms)."""
        async with _redis_errors(self._address):
            return await self._schedules.list()

    async def unschedule(self, name: str) -> bool:
        """Remove schedule ``name``; False if there was none."""
        async with _redis_errors(self._address):
            return await self._schedules.remove(name)

    async def send_or_deliver(self, **fields: Any) -> SendResult:
        """Like ``send``, but when Redis cannot be reached and a ``fallback`` deliverer is
        configured, deliver the message directly and say so (``SendResult.direct``).

        Raises ValidationError; RedisUnavailableError when there is no fallback (or Redis
        timed out, so the message may be enqueued after all); DirectSendError when the
        direct delivery failed too.
        """
        request = SendRequest(**fields)
        try:
            return SendResult(await self.send(**fields))
        except RedisUnavailableError as exc:
            fallback = fallback_for(self.fallback, exc)
            return await deliver_directly(fallback, request, self.settings, exc)

    async def _send_one(self, request: SendRequest, *, trace: bool = False) -> str:
        prepared = prepare(request, self.settings, trace=trace)
        command = enqueue_command(self.keys, prepared, self._window_ms)
        async with _redis_errors(self._address):
            await self._ensure_checked()
            if command.uses_script:
                reply = await self._scripts.enqueue(keys=command.keys, args=command.args)
            else:
                reply = await self._client.execute_command("XADD", *command.keys, *command.args)  # type: ignore[no-untyped-call]
        return parse_reply(command, reply)[0]

    async def send_many(self, requests: Iterable[SendRequest]) -> list[SendResult]:
        """Enqueue a batch; one result per request, in order. A bad item fails alone."""
        results, pending = prepare_batch(
            requests,
            settings=self.settings,
            keys=self.keys,
            window_ms=self._window_ms,
            trace=tracing_enabled(),
        )
        async with _redis_errors(self._address):
            await self._ensure_checked()
            for start in range(0, len(pending), _BATCH):
                await self._execute_batch(pending[start : start + _BATCH], results)
        return finish_batch(results)

    async def _execute_batch(
        self, batch: list[tuple[int, EnqueueCommand]], results: list[SendResult | None]
    ) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for _, command in batch:
                if command.uses_script:
                    await self._scripts.enqueue(keys=command.keys, args=command.args, client=pipe)
                else:
                    pipe.execute_command("XADD", *command.keys, *command.args)
            replies = await pipe.execute(raise_on_error=False)
        for (index, command), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                results[index] = SendResult(None, RedisUnavailableError(str(reply)))
            else:
                message_id, duplicate = parse_reply(command, reply)
                results[index] = SendResult(message_id, None, duplicate)


class _redis_errors:  # noqa: N801 - used as a lower-case context manager
    """Turn every redis-py failure into RedisUnavailableError naming the server
    (``streams.redis_client.redis_failure``)."""

    def __init__(self, address: str) -> None:
        self._address = address

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, _t: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if isinstance(exc, redis.exceptions.RedisError | OSError):
            raise redis_failure(self._address, exc) from exc
