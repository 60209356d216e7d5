"""Sending without the queue, for both producers: the opt-in fallback (when Redis cannot
be reached, hand the message straight to a deliverer) and the direct-send switch (always
do so, never touching Redis). Either way: no ordering, limits, retries, DLQ or dedup.

``fallback_for`` decides whether the fallback may be used at all; ``fall_back`` sends
after a Redis failure, ``send_direct`` under the switch; ``BlockingFallback`` runs the
(async) deliverer for ``SyncProducer`` on an event loop of its own in a background
thread, so pooled connections outlive one call and threads can send at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import structlog

from relayq.producers.send_request import SendRequest, SendResult, prepare
from relayq.streams.deliverer import Deliverer
from relayq.streams.errors import DirectSendError, RedisUnavailableError, ValidationError
from relayq.streams.message import Message
from relayq.streams.settings import Settings
from relayq.streams.telemetry import tracing_enabled

__all__ = (
    "BlockingFallback",
    "deliverer_from_settings",
    "fall_back",
    "fallback_for",
    "send_direct",
    "send_direct_many",
)

_T = TypeVar("_T")
_log = structlog.get_logger(__name__)
_DIRECT_SWITCH = "direct send is on (RELAYQ_DIRECT_SEND)"


def deliverer_from_settings(settings: Settings) -> Deliverer:
    """The deliverer a producer whose direct send is on uses when given none: the one
    ``RELAYQ_DELIVERER`` names, as a worker would build it, without a Redis client."""
    from relayq.consumers.deliverer_factory import build_deliverer

    return build_deliverer(settings, None)


def fallback_for(fallback: Deliverer | None, cause: RedisUnavailableError) -> Deliverer:
    """The deliverer to send with after ``cause``; re-raises when there is none, or when
    Redis timed out (the message may be enqueued after all)."""
    if fallback is None:
        raise RedisUnavailableError(
            f"{cause} (direct-send fallback is off)", maybe_done=cause.maybe_done
        ) from cause
    if cause.maybe_done:
        raise cause
    return fallback


async def fall_back(
    fallback: Deliverer, request: SendRequest, settings: Settings, cause: RedisUnavailableError
) -> SendResult:
    """Deliver ``request`` through ``fallback`` because of ``cause``.

    Raises RedisUnavailableError for a delayed message (it would go out early) and
    DirectSendError when the delivery fails.
    """
    prepared = prepare(request, settings, trace=tracing_enabled())
    if prepared.due_ms:
        raise RedisUnavailableError(
            f"{cause}; a delayed message is not sent directly (it would go out early)"
        ) from cause
    why = f"Redis is unreachable ({cause})"
    return await _deliver(fallback, prepared.message, settings, why)


async def send_direct(
    deliverer: Deliverer, request: SendRequest, settings: Settings, *, trace: bool
) -> SendResult:
    """Deliver ``request`` through ``deliverer`` without Redis (the direct-send switch).

    Raises ValidationError for a delayed message (nothing can hold it back) and
    DirectSendError when the delivery fails.
    """
    prepared = prepare(request, settings, trace=trace)
    if prepared.due_ms:
        field = "delay" if request.delay is not None else "not_before"
        raise ValidationError(field, f"cannot be honoured: {_DIRECT_SWITCH}, nothing queues")
    return await _deliver(deliverer, prepared.message, settings, _DIRECT_SWITCH)


async def send_direct_many(
    deliverer: Deliverer, requests: Iterable[SendRequest], settings: Settings
) -> list[SendResult]:
    """``send_many`` under the switch: each request delivered in turn; an item that fails
    (invalid, or its delivery failed) fails alone."""
    results: list[SendResult] = []
    for request in requests:
        try:
            results.append(await send_direct(deliverer, request, settings, trace=tracing_enabled()))
        except Exception as exc:  # whatever it is, it is this item's alone
            results.append(SendResult(None, exc))
    return results


async def _deliver(
    deliverer: Deliverer, message: Message, settings: Settings, why: str
) -> SendResult:
    """One delivery attempt within the send timeout; DirectSendError if it fails."""
    _log.warning("direct_send", message_id=message.id, tenant=message.tenant, cause=why)
    try:
        async with asyncio.timeout(settings.send_timeout):
            result = await deliverer.deliver(message)
    except Exception as exc:
        raise DirectSendError(f"{why} and the direct send failed: {exc}") from exc
    return SendResult(message.id, direct=True, provider_message_id=result.provider_message_id)


class BlockingFallback:
    """Runs coroutines of one async deliverer from blocking code, on a loop it owns; it
    owns the deliverer too (``close`` closes it, on the loop its connections belong to)."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer = deliverer
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop (started on first use) and wait for its result."""
        with self._lock:
            if self._closed:
                coroutine.close()
                raise RuntimeError("the producer's direct-send fallback is closed")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="relayq-fallback", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def close(self) -> None:
        """Close the deliverer (``aclose``), then stop the loop; idempotent."""
        if self._closed:
            return
        try:
            self.run(self.deliverer.aclose())
        finally:
            with self._lock:
                self._closed = True
                loop, thread = self._loop, self._thread
            if loop is not None and thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()
