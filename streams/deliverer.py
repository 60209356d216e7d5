"""What a worker hands messages to: the Deliverer protocol and its result.

A deliverer returns a DeliveryResult on success, or raises one of the errors in
``streams.errors``: RetryableDeliveryError (with an optional ``retry_after``),
ThrottledError (429: waits without using an attempt) or PermanentDeliveryError
(dead-lettered at once). Any other exception counts as retryable, kind ``exception``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from streams.message import Message

__all__ = ("Deliverer", "DeliveryResult")


class DeliveryResult(msgspec.Struct, frozen=True):
    """A successful hand-over to the provider."""

    provider_message_id: str | None = None


@runtime_checkable
class Deliverer(Protocol):
    """Delivers one message per call; called concurrently for different conversations."""

    async def deliver(self, message: Message) -> DeliveryResult: ...

    async def aclose(self) -> None: ...
