"""The blocking producer, for services that are not asyncio: same API as ``Producer``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import redis

from relayq.producers.direct_send import BlockingFallback, deliver_directly, fallback_for
from relayq.producers.enqueue_command import enqueue_command, parse_reply
from relayq.producers.schedule_book import SyncScheduleBook
from relayq.producers.send_batch import finish_batch, prepare_batch
from relayq.producers.send_request import SendRequest, SendResult, prepare
from relayq.streams.deliverer import Deliverer
from relayq.streams.errors import RedisUnavailableError
from relayq.streams.keys import Keys
from relayq.streams.redis_client import (
    check_partitions_sync,
    create_sync_client,
    redis_address,
    redis_errors,
)
from relayq.streams.schedule import Schedule
from relayq.streams.scripts import script_source
from relayq.streams.settings import Settings
from relayq.streams.telemetry import tracer, tracing_enabled

__all__ = ("SyncProducer",)

_BATCH = 1000


class SyncProducer:
    """Sends messages into relayq from blocking code; thread-safe (redis-py pools)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: redis.Redis | None = None,
        fallback: Deliverer | None = None,
    ) -> None:
        """``fallback``: as for ``Producer``; the producer runs this async deliverer on an
        event loop of its own and closes it (``aclose``) in ``close()``."""
        self.settings = settings if settings is not None else Settings.from_env()
        self._fallback = BlockingFallback(fallback) if fallback is not None else None
        self.keys = Keys(self.settings.namespace, self.settings.partitions)
        self._owns_client = client is None
        self._client = client if client is not None else create_sync_client(self.settings)
        self._address = redis_address(self._client)
        self._enqueue = self._client.register_script(script_source("enqueue_with_dedup_or_delay_4"))
        self._window_ms = round(self.settings.dedup_window * 1000)
        self._schedules = SyncScheduleBook(self._client, self.keys, self.settings)
        self._checked = False

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
        """Close the Redis connections this producer opened, and the fallback; idempotent."""
        try:
            if self._fallback is not None:
                self._fallback.close()
        finally:
            if self._owns_client:
                self._client.close()

    def _ensure_checked(self) -> None:
        if not self._checked:
            check_partitions_sync(self._client, self.keys)
            self._checked = True

    def send(self, **fields: Any) -> str:
        """Enqueue one message (fields of SendRequest) and return its message id."""
        request = SendRequest(**fields)
        if not tracing_enabled():
            return self._send_one(request, trace=False)
        with tracer().start_as_current_span("relayq send", kind=_producer_kind()) as span:
            span.set_attribute("relayq.tenant", request.tenant)
            if request.sender is not None:
                span.set_attribute("relayq.sender", request.sender)
            message_id = self._send_one(request, trace=True)
            span.set_attribute("messaging.message.id", message_id)
            return message_id

    def schedule(
        self,
        name: str,
        *,
        every: float | dt.timedelta | None = None,
        cron: str | None = None,
        **fields: Any,
    ) -> Schedule:
        """Create or replace repeatable message ``name`` (see ``Producer.schedule``)."""
        with redis_errors(self._address):
            self._ensure_checked()
            return self._schedules.add(name, every=every, cron=cron, **fields)

    def schedules(self) -> list[tuple[Schedule, int]]:
        """Every schedule and its next due time (Unix ms)."""
        with redis_errors(self._address):
            return self._schedules.list()

    def unschedule(self, name: str) -> bool:
        """Remove schedule ``name``; False if there was none."""
        with redis_errors(self._address):
            return self._schedules.remove(name)

    def send_or_deliver(self, **fields: Any) -> SendResult:
        """Like ``send``, but deliver directly through the ``fallback`` when Redis cannot
        be reached (see ``Producer.send_or_deliver``; the same errors)."""
        request = SendRequest(**fields)
        try:
            return SendResult(self.send(**fields))
        except RedisUnavailableError as exc:
            fallback = fallback_for(self.fallback, exc)
            assert self._fallback is not None
            return self._fallback.run(deliver_directly(fallback, request, self.settings, exc))

    def _send_one(self, request: SendRequest, *, trace: bool) -> str:
        command = enqueue_command(
            self.keys, prepare(request, self.settings, trace=trace), self._window_ms
        )
        with redis_errors(self._address):
            self._ensure_checked()
            if command.uses_script:
                reply = self._enqueue(keys=command.keys, args=command.args)
            else:
                reply = self._client.execute_command("XADD", *command.keys, *command.args)  # type: ignore[no-untyped-call]
        return parse_reply(command, reply)[0]

    def send_many(self, requests: Iterable[SendRequest]) -> list[SendResult]:
        """Enqueue a batch; one result per request, in order. A bad item fails alone."""
        results, pending = prepare_batch(
            requests,
            settings=self.settings,
            keys=self.keys,
            window_ms=self._window_ms,
            trace=tracing_enabled(),
        )
        with redis_errors(self._address):
            self._ensure_checked()
            for start in range(0, len(pending), _BATCH):
                batch = pending[start : start + _BATCH]
                pipe = self._client.pipeline(transaction=False)
                for _, command in batch:
                    if command.uses_script:
                        self._enqueue(keys=command.keys, args=command.args, client=pipe)
                    else:
                        pipe.execute_command("XADD", *command.keys, *command.args)  # type: ignore[no-untyped-call]
                replies = pipe.execute(raise_on_error=False)
                for (index, command), reply in zip(batch, replies, strict=True):
                    if isinstance(reply, Exception):
                        results[index] = SendResult(None, RedisUnavailableError(str(reply)))
                    else:
                        message_id, duplicate = parse_reply(command, reply)
                        results[index] = SendResult(message_id, None, duplicate)
        return finish_batch(results)


def _producer_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.PRODUCER
