"""In-memory state of one owned partition, and of one stream entry on its way to the provider."""

from __future__ import annotations

import asyncio
import dataclasses

from relayq.consumers.budget import Budget
from relayq.streams.message import Message

__all__ = ("Envelope", "PartitionState")


@dataclasses.dataclass(slots=True, eq=False)
class PartitionState:
    """One tenure of this worker as a partition's owner (a new object per acquisition)."""

    partition: int
    token: str
    lease_deadline: float
    """Monotonic time at which the lease may expire: renewal sent-time + lease TTL."""
    active: bool = True
    in_flight: int = 0
    buffered: int = 0
    """Entries of this partition held in memory: queued, in flight or waiting to retry."""
    room: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def may_send(self, now: float, send_timeout: float) -> bool:
        """The fence: a send may start only if it ends before the lease can run out."""
        return self.active and now + send_timeout < self.lease_deadline


@dataclasses.dataclass(slots=True, eq=False)
class Envelope:
    """A stream entry read by this worker, with what is known of its delivery so far."""

    state: PartitionState
    stream: str
    entry_id: bytes
    message: Message
    failed_attempts: int = 0
    slot: Budget | None = None
    """The tenant budget one of whose in-flight slots this entry holds, while it does (see
    admission)."""
    not_before: float = 0.0
    """Monotonic time before which the next attempt must not start (a recovered backoff)."""
    channel_lease: str | None = None
    """The send lease this entry holds under its channel's or the global cap, while it
    does (``consumers.channel_gate``)."""
