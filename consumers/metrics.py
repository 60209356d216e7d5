"""Worker counters, and the metrics line logged every ``metrics_interval`` seconds.

Besides the totals, each outcome is counted by (outcome, channel, priority, tenant) and
two latencies are kept as histogram buckets, for the worker's Prometheus endpoint
(``consumers.worker_metrics_export``). They are plain ints in dicts on purpose: a
delivery pays a dict increment (about 0.3 us) instead of a prometheus_client labelled
``inc()`` (about 3.5 us, a lock and a label lookup); the exporter reads them when scraped.
"""

from __future__ import annotations

import dataclasses
import time
from bisect import bisect_left
from collections import Counter

from relayq.streams.message import Message

__all__ = (
    "ATTEMPT_BUCKETS",
    "LATENCY_BUCKETS",
    "OUTCOMES",
    "Buckets",
    "OutcomeKey",
    "WorkerMetrics",
)

OUTCOMES = ("delivered", "retried", "throttled", "dead_lettered")
"""What a worker counts per (channel, priority, tenant)."""
LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""Upper bounds (seconds) of the end-to-end latency buckets: accepted by ``send()`` to
the provider's success, queueing and retries included."""
ATTEMPT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Upper bounds (seconds) of the attempt duration buckets: one call of the deliverer."""

OutcomeKey = tuple[str, str, str, str]
"""(outcome, channel, priority, tenant)."""
_UNKNOWN = "unknown"
"""Channel, priority and tenant of an entry dead-lettered without a decodable message."""


@dataclasses.dataclass(slots=True)
class Buckets:
    """One histogram's counts: ``counts[i]`` holds the values in (bounds[i-1], bounds[i]],
    the last one those above every bound; ``total`` is their sum."""

    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0

    @classmethod
    def of(cls, bounds: tuple[float, ...]) -> Buckets:
        return cls(bounds, [0] * (len(bounds) + 1))

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


@dataclasses.dataclass(slots=True)
class WorkerMetrics:
    delivered: int = 0
    retried: int = 0
    throttled: int = 0
    dead_lettered: int = 0
    released_on_handover: int = 0
    """Entries read but not started because the partition went to another worker (or the
    lease could no longer cover a send): left pending for the next owner, not lost."""
    skipped_delivered: int = 0
    """Entries not sent because their message was already recorded as delivered."""
    in_flight: int = 0
    tenant_in_flight: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per tenant; zeros are kept (cheaper per message) and left out of ``snapshot``."""
    default_channel: str = "webhook"
    """The channel label of a message that names none (``Settings.default_channel``)."""
    outcomes: dict[OutcomeKey, int] = dataclasses.field(default_factory=dict)
    """Each outcome's count by (outcome, channel, priority, tenant)."""
    latency: dict[tuple[str, str], Buckets] = dataclasses.field(default_factory=dict)
    """End-to-end latency of each delivered message by (channel, priority)."""
    attempt_seconds: dict[str, Buckets] = dataclasses.field(default_factory=dict)
    """Duration of each delivery attempt (whatever its outcome) by channel."""

    def started(self, tenant: str) -> None:
        self.in_flight += 1
        counts = self.tenant_in_flight
        counts[tenant] = counts.get(tenant, 0) + 1

    def finished(self, tenant: str) -> None:
        self.in_flight -= 1
        self.tenant_in_flight[tenant] -= 1

    def add_delivered(self, message: Message) -> None:
        """``message`` reached its provider: counted, with its end-to-end latency."""
        self.delivered += 1
        channel = self._count("delivered", message)
        key = (channel, message.priority)
        buckets = self.latency.get(key)
        if buckets is None:
            buckets = self.latency[key] = Buckets.of(LATENCY_BUCKETS)
        buckets.observe(max(0.0, time.time() - message.created_ms / 1000))

    def add_retried(self, message: Message) -> None:
        self.retried += 1
        self._count("retried", message)

    def add_throttled(self, message: Message) -> None:
        self.throttled += 1
        self._count("throttled", message)

    def add_dead_lettered(self, message: Message | None) -> None:
        """Dead-lettered (``None``: an entry that does not decode as a message)."""
        self.dead_lettered += 1
        if message is None:
            key = ("dead_lettered", _UNKNOWN, _UNKNOWN, _UNKNOWN)
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
        else:
            self._count("dead_lettered", message)

    def add_attempt(self, message: Message, seconds: float) -> None:
        """One delivery attempt of ``message`` took ``seconds``."""
        channel = message.channel or self.default_channel
        buckets = self.attempt_seconds.get(channel)
        if buckets is None:
            buckets = self.attempt_seconds[channel] = Buckets.of(ATTEMPT_BUCKETS)
        buckets.observe(seconds)

    def _count(self, outcome: str, message: Message) -> str:
        """Count ``outcome`` for ``message``; its channel."""
        channel = message.channel or self.default_channel
        key = (outcome, channel, message.priority, message.tenant)
        outcomes = self.outcomes
        outcomes[key] = outcomes.get(key, 0) + 1
        return channel

    def snapshot(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "retried": self.retried,
            "throttled": self.throttled,
            "dead_lettered": self.dead_lettered,
            "released_on_handover": self.released_on_handover,
            "skipped_delivered": self.skipped_delivered,
            "in_flight": self.in_flight,
            "tenant_in_flight": dict(
                Counter({t: n for t, n in self.tenant_in_flight.items() if n}).most_common(20)
            ),
        }
