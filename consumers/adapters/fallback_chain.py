"""A fallback chain: one channel, several adapters tried in order within one attempt
(``email=sendgrid>smtp``: SendGrid, and SMTP when SendGrid cannot take the message).

- A success ends the chain: its provider id is the message's.
- A retryable error (5xx, timeout, connection), a throttle (429, SMTP 421) or a channel
  that is down (a rejected key) moves on to the next adapter.
- A permanent error ends the chain: the message itself is bad (an invalid payload, a
  recipient that does not exist), so another provider would refuse it too. The error keeps
  its kind; its reason lists every adapter's error so far.
- A fenced send (SendFencedError: the lease may have run out) ends it at once: nothing
  more may leave this worker for the message.
- When every adapter failed: ThrottledError when every one was throttled (no attempt is
  used; the shortest wait), ChannelDownError when every channel was down, else
  RetryableDeliveryError kind ``fallback_exhausted``. The reason holds each adapter's
  error: ``sendgrid: SendGrid HTTP 503: ...; smtp: SMTP connection at connect: ...``.

Each adapter checks the send fence as its request leaves, and each such check restarts
the worker's send timeout; a primary that fails by timing out uses up that timeout, so
the worker may cut the attempt before the next adapter runs (give the primary a shorter
timeout than the send timeout to leave the fallback room).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from relayq.streams.deliverer import Deliverer, DeliveryResult
from relayq.streams.errors import (
    ChannelDownError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SendFencedError,
    ThrottledError,
    ThrottleScope,
)
from relayq.streams.message import Message

__all__ = ("FallbackChain",)

_log = structlog.get_logger(__name__)

EXHAUSTED = "fallback_exhausted"


class FallbackChain:
    """A Deliverer trying ``adapters`` in order. ``names``: how the reasons call each one
    (default: the adapter's ``name`` attribute — ``sendgrid``, ``smtp`` — else its class)."""

    def __init__(
        self, adapters: Sequence[Deliverer], *, names: Sequence[str] | None = None
    ) -> None:
        if not adapters:
            raise ValueError("a fallback chain needs at least one adapter")
        if names is not None and len(names) != len(adapters):
            raise ValueError("a fallback chain needs one name per adapter")
        self.adapters = tuple(adapters)
        self.names = tuple(names) if names is not None else tuple(map(_name, adapters))

    async def deliver(self, message: Message) -> DeliveryResult:
        failures: list[tuple[str, Exception]] = []
        for name, adapter in zip(self.names, self.adapters, strict=True):
            try:
                return await adapter.deliver(message)
            except SendFencedError:
                raise
            except PermanentDeliveryError as exc:
                failures.append((name, exc))
                raise PermanentDeliveryError(_reasons(failures), kind=exc.kind) from exc
            except Exception as exc:  # retryable, throttled, channel down or unexpected
                failures.append((name, exc))
                # A dead credential is an alert even while the next adapter covers for it.
                log = _log.error if isinstance(exc, ChannelDownError) else _log.warning
                log(
                    "fallback_adapter_failed",
                    message_id=message.id,
                    adapter=name,
                    kind=_kind(exc),
                )
        raise _exhausted(failures)

    async def aclose(self) -> None:
        """Close every adapter, even when one fails to close (the first error is raised)."""
        first: BaseException | None = None
        for adapter in self.adapters:
            try:
                await adapter.aclose()
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first


def _exhausted(failures: list[tuple[str, Exception]]) -> Exception:
    errors = [exc for _name, exc in failures]
    reason = _reasons(failures)
    if all(isinstance(exc, ThrottledError) for exc in errors):
        throttles = [exc for exc in errors if isinstance(exc, ThrottledError)]
        waits = [exc.retry_after for exc in throttles if exc.retry_after is not None]
        scopes = {exc.scope for exc in throttles}
        scope = scopes.pop() if len(scopes) == 1 else ThrottleScope.CHANNEL
        return ThrottledError(
            reason, retry_after=min(waits) if waits else None, kind=EXHAUSTED, scope=scope
        )
    if all(isinstance(exc, ChannelDownError) for exc in errors):
        return ChannelDownError(reason, kind=EXHAUSTED)
    waits = [
        exc.retry_after
        for exc in errors
        if isinstance(exc, RetryableDeliveryError) and exc.retry_after is not None
    ]
    return RetryableDeliveryError(reason, retry_after=min(waits) if waits else None, kind=EXHAUSTED)


def _name(adapter: Deliverer) -> str:
    name = getattr(adapter, "name", None)
    return name if isinstance(name, str) else type(adapter).__name__


def _reasons(failures: list[tuple[str, Exception]]) -> str:
    return "; ".join(f"{name}: {_reason(exc)}" for name, exc in failures)


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else f"{type(exc).__name__}: {exc}"


def _kind(exc: Exception) -> str:
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) else "exception"
