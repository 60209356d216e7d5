"""The opt-in direct-send fallback of both producers: when Redis cannot be reached, hand
the message straight to a deliverer (no queue: no ordering, limits, retries or DLQ).

``fallback_for`` decides whether the fallback may be used at all; ``deliver_directly``
sends; ``BlockingFallback`` runs the (async) deliverer for ``SyncProducer`` on an event
loop of its own in a background thread, so pooled connections outlive one call and
threads can send at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from relayq.producers.send_request import SendRequest, SendResult, prepare
from relayq.streams.deliverer import Deliverer
from relayq.streams.errors import DirectSendError, RedisUnavailableError
from relayq.streams.settings import Settings
from relayq.streams.telemetry import tracing_enabled

__all__ = ("BlockingFallback", "deliver_directly", "fallback_for")

_T = TypeVar("_T")
_log = structlog.get_logger(__name__)


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


async def deliver_directly(
    fallback: Deliverer, request: SendRequest, settings: Settings, cause: RedisUnavailableError
) -> SendResult:
    """Deliver ``request`` through ``fallback`` within the send timeout.

    Raises RedisUnavailableError for a delayed message (it would go out early) and
    DirectSendError when the delivery fails.
    """
    prepared = prepare(request, settings, trace=tracing_enabled())
    if prepared.due_ms:
        raise RedisUnavailableError(
            f"{cause}; a delayed message is not sent directly (it would go out early)"
        ) from cause
    message = prepared.message
    _log.warning("direct_send", message_id=message.id, tenant=message.tenant, cause=str(cause))
    try:
        async with asyncio.timeout(settings.send_timeout):
            result = await fallback.deliver(message)
    except Exception as exc:
        raise DirectSendError(
            f"Redis is unreachable ({cause}) and the direct send failed: {exc}"
        ) from exc
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
