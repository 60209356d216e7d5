"""One delivery attempt and what follows from its outcome: ack, retry later, or dead-letter.

Attempt counts live in Redis (``{ns:P}:attempts``: entry id -> "failed:next_ms") from the
first failure on, so a new owner continues the count and honours the backoff. Each attempt
is also marked as started before its request leaves (``StallMarks``), so one that never
finishes, whatever killed its worker, is counted as a stall by the next owner.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from opentelemetry.trace import Link, SpanKind, get_current_span
from redis.asyncio import Redis

from relayq.consumers.acknowledger import Acknowledger
from relayq.consumers.admission import Admission
from relayq.consumers.attempt_records import AttemptRecords
from relayq.consumers.attempt_watchdog import AttemptWatchdog
from relayq.consumers.backoff import retry_delay
from relayq.consumers.channel_down import pause_down_channel
from relayq.consumers.channel_gate import ChannelGate, channel_resolver
from relayq.consumers.dead_letters import DeadLetterKind, DeadLetters
from relayq.consumers.envelope import Envelope
from relayq.consumers.metrics import WorkerMetrics
from relayq.consumers.pause_state import PauseState
from relayq.consumers.stall_marks import StallMarks
from relayq.streams.deliverer import Deliverer, SendFencedError, send_fence
from relayq.streams.errors import (
    ChannelDownError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
    ThrottleScope,
)
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.redis_client import REDIS_UNAVAILABLE
from relayq.streams.settings import Settings
from relayq.streams.telemetry import extract_context, tracer, tracing_enabled

__all__ = ("DeliveryRunner",)

_log = structlog.get_logger(__name__)
_REDIS_RETRY = 1.0
_RETRY_AFTER_MAX = 900.0
_FENCE_RETRY = 0.1
"""Wait before an entry held back by the fence is tried again. It stays the head of its
conversation: if the lease was renewed meanwhile it goes out then, in order; if the
lease was lost, the partition is dropped and the next owner delivers it."""


class DeliveryRunner:
    """Called by the scheduler's lanes for each head-of-conversation entry."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: Redis,
        keys: Keys,
        deliverer: Deliverer,
        acknowledger: Acknowledger,
        admission: Admission,
        dead_letters: DeadLetters,
        metrics: WorkerMetrics,
        watchdog: AttemptWatchdog,
        stall_marks: StallMarks,
        attempt_records: AttemptRecords,
        channels: ChannelGate | None = None,
        pauses: PauseState | None = None,
        worker_id: str = "",
    ) -> None:
        self._settings = settings
        self._client = client
        self._keys = keys
        self._deliverer = deliverer
        self._acknowledger = acknowledger
        self._admission = admission
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._timeout = settings.send_timeout
        self._watchdog = watchdog
        self._stall_marks = stall_marks
        self._attempt_records = attempt_records
        self._channels = channels
        self._pauses = pauses if pauses is not None else PauseState()
        self._worker_id = worker_id
        self._by_channel = settings.deliverer == "channels"
        self._channel_of = channel_resolver(settings)

    async def __call__(self, envelope: Envelope) -> float | None:
        if not envelope.state.may_send(time.monotonic(), self._timeout):
            self._metrics.released_on_handover += 1
            return _FENCE_RETRY
        tenant = envelope.message.tenant
        self._metrics.started(tenant)
        try:
            unsent = await self._stall_marks.started(envelope)
        except REDIS_UNAVAILABLE as exc:
            self._metrics.finished(tenant)
            _log.warning("stall_mark_failed", message_id=envelope.message.id, error=str(exc))
            return _REDIS_RETRY
        if not unsent:
            self._metrics.finished(tenant)
            self._already_delivered(envelope)
            return None
        try:
            return await self._send_marked(envelope)
        finally:
            self._metrics.finished(tenant)

    async def _send_marked(self, envelope: Envelope) -> float | None:
        """One attempt whose stall mark is in Redis, and what follows from its outcome."""
        state, timeout, watchdog = envelope.state, self._timeout, self._watchdog

        def request_leaves() -> bool:
            # Checked again as the request leaves: a pause since the check above must not
            # let stale work out after the lease may have passed to another worker. If it
            # goes, the send timeout counts from here (see AttemptWatchdog).
            if not state.may_send(time.monotonic(), timeout):
                return False
            watchdog.restart()
            return True

        try:
            with send_fence(request_leaves):
                provider_message_id = await self._attempt(envelope)
        except SendFencedError:
            self._metrics.released_on_handover += 1
            await self._unmark(envelope)
            return _FENCE_RETRY
        except ThrottledError as exc:
            return await self._throttled(envelope, exc)
        except ChannelDownError as exc:
            return await self._channel_down(envelope, exc)
        except PermanentDeliveryError as exc:
            error = exc.reason if exc.kind == "permanent" else f"{exc.kind}: {exc.reason}"
            return await self._dead_letter(envelope, error, DeadLetterKind.PERMANENT, 1)
        except Exception as exc:
            return await self._failed(envelope, exc)
        self._acknowledger.ack(envelope, provider_message_id)
        self._metrics.add_delivered(envelope.message)
        return None

    def _already_delivered(self, envelope: Envelope) -> None:
        """Its record says delivered (a previous owner sent it and acknowledged it after
        this worker read it): acknowledged without a second send. The acknowledgement
        counts and records nothing when that owner's already took the entry."""
        self._metrics.skipped_delivered += 1
        _log.info("already_delivered", message_id=envelope.message.id)
        self._acknowledger.ack(envelope, None)

    async def _attempt(self, envelope: Envelope) -> str | None:
        """One delivery attempt; the provider's id of the message, if it gave one."""
        if not tracing_enabled():
            return await self._deliver_bounded(envelope.message)
        message = envelope.message
        producer = extract_context(dict(message.trace))
        links = [Link(get_current_span(producer).get_span_context())] if message.trace else []
        with tracer().start_as_current_span(
            "relayq deliver", context=producer, kind=SpanKind.CONSUMER, links=links
        ) as span:
            span.set_attributes(
                {
                    "messaging.system": "relayq",
                    "messaging.destination.name": envelope.stream,
                    "messaging.message.id": message.id,
                    "relayq.partition": envelope.state.partition,
                    "relayq.tenant": message.tenant,
                    "relayq.conversation": message.conversation,
                    "relayq.attempt": envelope.failed_attempts + 1,
                }
            )
            return await self._deliver_bounded(message)

    async def _deliver_bounded(self, message: Message) -> str | None:
        """The deliverer's call, ended with TimeoutError at the send timeout."""
        watchdog = self._watchdog
        task = watchdog.start()
        started = time.perf_counter()
        try:
            result = await self._deliverer.deliver(message)
        except asyncio.CancelledError:
            if watchdog.was_cut(task):
                raise TimeoutError(f"no answer within {self._timeout}s") from None
            raise
        finally:
            watchdog.stop(task)
            self._metrics.add_attempt(message, time.perf_counter() - started)
        # A deliverer written against the protocol returns a DeliveryResult; one that
        # returns nothing still delivered.
        provider_message_id = getattr(result, "provider_message_id", None)
        return provider_message_id if isinstance(provider_message_id, str) else None

    async def _throttled(self, envelope: Envelope, exc: ThrottledError) -> float:
        """The provider asked to slow down: pause whom it concerns (``exc.scope``: the
        sender, without one the tenant; the tenant; the channel, everywhere; or only this
        recipient's conversation); no attempt used."""
        self._metrics.add_throttled(envelope.message)
        wait = exc.retry_after if exc.retry_after is not None else self._settings.backoff_base
        # The provider's Retry-After is honoured up to _RETRY_AFTER_MAX, not backoff_max
        # (which bounds our own backoff, not how long a provider may ask us to wait).
        wait = min(max(wait, 0.0), max(self._settings.backoff_max, _RETRY_AFTER_MAX))
        try:
            await self._attempt_records.throttled(envelope, wait, exc.reason)
        except REDIS_UNAVAILABLE as exc_redis:
            # The mark stays: the next owner would count one stall too many.
            _log.warning(
                "stall_unmark_failed", message_id=envelope.message.id, error=str(exc_redis)
            )
        await self._pause_scope(envelope.message, exc.scope, wait)
        return wait

    async def _pause_scope(self, message: Message, scope: str, wait: float) -> None:
        if scope == ThrottleScope.RECIPIENT:
            return  # only this conversation waits: the lane holds it back ``wait`` s
        if scope == ThrottleScope.CHANNEL and self._channels is not None:
            try:
                await self._channels.pause(self._channel_of(message), wait)
            except REDIS_UNAVAILABLE as exc:  # this worker's own pause still holds
                _log.warning("provider_pause_failed", error=str(exc))
            return
        if scope == ThrottleScope.SENDER and message.sender is None and self._by_channel:
            # The adapter sent from its channel's default sender, which every message of the
            # channel without a sender of its own shares.
            await self._pause_scope(message, ThrottleScope.CHANNEL, wait)
            return
        await self._admission.pause_for(message, wait, tenant=scope == ThrottleScope.TENANT)

    async def _channel_down(self, envelope: Envelope, exc: ChannelDownError) -> float:
        """The channel cannot send at all: paused for every worker until an operator
        resumes it; this message keeps its place and its attempts."""
        self._metrics.add_throttled(envelope.message)
        channel = self._channel_of(envelope.message)
        try:
            await pause_down_channel(
                self._client, self._keys, self._pauses, channel, exc, self._worker_id
            )
        except REDIS_UNAVAILABLE as exc_redis:
            _log.warning("channel_pause_failed", channel=channel, error=str(exc_redis))
        await self._unmark(envelope)
        return _FENCE_RETRY

    async def _failed(self, envelope: Envelope, exc: Exception) -> float | None:
        if isinstance(exc, TimeoutError):
            reason, kind, hint = f"no answer within {self._timeout}s", "timeout", None
        elif isinstance(exc, RetryableDeliveryError):
            reason, kind, hint = exc.reason, exc.kind, exc.retry_after
        else:
            reason, kind, hint = f"{type(exc).__name__}: {exc}", "exception", None
        envelope.failed_attempts += 1
        attempts = envelope.failed_attempts
        allowed = envelope.message.max_attempts or self._settings.max_attempts
        if attempts >= allowed:
            error = f"{kind}: {reason} (after {attempts} attempts)"
            return await self._dead_letter(envelope, error, DeadLetterKind.EXHAUSTED, attempts)
        delay = retry_delay(attempts, self._settings.backoff_base, self._settings.backoff_max, hint)
        self._metrics.add_retried(envelope.message)
        await self._record_failure(envelope, delay, reason, kind)
        _log.info(
            "delivery_retry",
            message_id=envelope.message.id,
            attempt=attempts,
            error_kind=kind,
            error=reason,
            retry_in=round(delay, 3),
        )
        return delay

    async def _unmark(self, envelope: Envelope) -> None:
        try:
            await self._stall_marks.unmark(envelope)
        except REDIS_UNAVAILABLE as exc:
            # The mark stays: the next owner would count one stall too many.
            _log.warning("stall_unmark_failed", message_id=envelope.message.id, error=str(exc))

    async def _record_failure(
        self, envelope: Envelope, delay: float, error: str, kind: str
    ) -> None:
        """The failed attempt's count and backoff, its stall mark taken back, its record
        and event, at once."""
        next_ms = time.time_ns() // 1_000_000 + round(delay * 1000)
        try:
            await self._attempt_records.failed(envelope, next_ms, error, kind)
        except REDIS_UNAVAILABLE as exc:
            # The count is still kept here; only a crash before the next write loses it.
            _log.warning("attempt_record_failed", error=str(exc))

    async def _dead_letter(
        self, envelope: Envelope, error: str, kind: str, attempts: int
    ) -> float | None:
        try:
            moved = await self._dead_letters.move(
                envelope.stream,
                envelope.entry_id,
                error=error,
                kind=kind,
                attempts=attempts,
                message=envelope.message,
            )
        except REDIS_UNAVAILABLE as exc:
            _log.warning("dead_letter_failed", message_id=envelope.message.id, error=str(exc))
            return _REDIS_RETRY
        if moved:
            self._metrics.add_dead_lettered(envelope.message)
            _log.warning(
                "dead_lettered",
                message_id=envelope.message.id,
                kind=kind,
                attempts=attempts,
                error=error,
                tenant=envelope.message.tenant,
            )
        return None
