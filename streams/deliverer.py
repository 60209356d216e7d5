"""What a worker hands messages to: the Deliverer protocol and its result.

A deliverer returns a DeliveryResult on success, or raises one of the errors in
``streams.errors``: RetryableDeliveryError (with an optional ``retry_after``),
ThrottledError (429: waits without using an attempt) or PermanentDeliveryError
(dead-lettered at once). Any other exception counts as retryable, kind ``exception``.

The send fence: a worker may send only while its partition lease is surely valid. It
checks that before each attempt, but a process paused between that check and the moment
the request leaves (SIGSTOP, a VM freeze) would send stale work on waking up, after a new
owner took over. So a deliverer calls ``check_send_allowed()`` immediately before its
request leaves the process, with no ``await`` in between (the webhook deliverer does it
in its socket writes); it raises SendFencedError when the lease may have run out.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

import msgspec

from relayq.streams.errors import SendFencedError
from relayq.streams.message import Message

__all__ = (
    "Deliverer",
    "DeliveryResult",
    "SendFencedError",
    "check_send_allowed",
    "send_fence",
)

_fence: ContextVar[Callable[[], bool] | None] = ContextVar("relayq_send_fence", default=None)


def check_send_allowed() -> None:
    """Raise SendFencedError unless the current delivery attempt may still send."""
    allowed = _fence.get()
    if allowed is not None and not allowed():
        raise SendFencedError("partition lease may have run out; request not sent")


class send_fence:  # noqa: N801 - a context manager used like a function
    """Run a delivery attempt under ``allowed`` (checked by ``check_send_allowed``).

    A plain class, not ``@contextmanager``: it runs once per message on the hot path.
    """

    __slots__ = ("_allowed", "_token")

    def __init__(self, allowed: Callable[[], bool]) -> None:
        self._allowed = allowed

    def __enter__(self) -> None:
        self._token = _fence.set(self._allowed)

    def __exit__(self, *_exc: object) -> None:
        _fence.reset(self._token)


class DeliveryResult(msgspec.Struct, frozen=True):
    """A successful hand-over to the provider."""

    provider_message_id: str | None = None


@runtime_checkable
class Deliverer(Protocol):
    """Delivers one message per call; called concurrently for different conversations."""

    async def deliver(self, message: Message) -> DeliveryResult: ...

    async def aclose(self) -> None: ...
