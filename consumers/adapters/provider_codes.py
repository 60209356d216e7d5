"""What a provider's error table says to do, as one vocabulary for every adapter.

Each provider module (``whatsapp_codes``, ``twilio_codes``, ``sendgrid_codes``) keeps its
own table, keyed by that provider's codes, each row with its source page; a row's
:class:`Outcome` becomes the exception a deliverer raises through :func:`error_for`.
An answer no row covers falls back on its HTTP status (:func:`status_outcome`).
"""

from __future__ import annotations

import enum

from relayq.streams.errors import (
    ChannelDownError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
    ThrottleScope,
)

__all__ = ("Outcome", "error_for", "status_outcome")


class Outcome(enum.StrEnum):
    """What relayq does with a message the provider answered so."""

    RETRY = "retry"
    """Retried with backoff; uses an attempt."""
    THROTTLE = "throttle"
    """Waits (its scope only) without using an attempt."""
    PERMANENT = "permanent"
    """Dead-lettered at once with the provider's code and message."""
    CHANNEL_DOWN = "channel_down"
    """The account cannot send at all: the channel pauses and an operator is alerted."""


def status_outcome(status: int, *, unauthorized_down: bool = False) -> Outcome:
    """The outcome of an answer no row covers: 429 throttles, 408 and 5xx retry, 401
    pauses the channel where ``unauthorized_down``, any other status is permanent."""
    if status == 429:
        return Outcome.THROTTLE
    if status == 408 or status >= 500:
        return Outcome.RETRY
    if status == 401 and unauthorized_down:
        return Outcome.CHANNEL_DOWN
    return Outcome.PERMANENT


def error_for(
    outcome: Outcome,
    reason: str,
    kind: str,
    retry_after: float | None,
    *,
    scope: ThrottleScope | None = None,
    wait: float | None = None,
) -> DeliveryError:
    """The exception of ``outcome``. A throttle waits ``retry_after`` (the provider's),
    else ``wait`` (the table's), and concerns ``scope`` (the sender when None)."""
    if outcome is Outcome.THROTTLE:
        return ThrottledError(
            reason,
            retry_after=retry_after if retry_after is not None else wait,
            kind=kind,
            scope=scope or ThrottleScope.SENDER,
        )
    if outcome is Outcome.RETRY:
        return RetryableDeliveryError(reason, retry_after=retry_after, kind=kind)
    if outcome is Outcome.CHANNEL_DOWN:
        return ChannelDownError(reason, kind=kind)
    return PermanentDeliveryError(reason, kind=kind)
