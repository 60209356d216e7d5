"""The API's ``/metrics``: the namespace's state as Prometheus reads it, from Redis.

Cluster truth, the same for every API server (the read model of ``relayq status``,
``ops.counts``, at the moment of the scrape):

- ``relayq_messages_delivered_total``, ``relayq_messages_dead_lettered_total``: counters
  by ``priority`` and ``tenant``, from the durable ``{ns:P}:counts`` hashes (once per
  message, whichever worker finished it). The ``RELAYQ_METRICS_TOP_TENANTS`` busiest
  tenants by name, the rest as ``other`` (``consumers.tenant_labels``).
- ``relayq_messages_waiting``, ``relayq_messages_in_flight``, ``relayq_messages_retrying``,
  ``relayq_messages_delayed``, ``relayq_oldest_waiting_age_seconds``: gauges by
  ``priority`` (every level of the namespace, 0 when it holds nothing).
- ``relayq_dead_letter_entries`` (in the dead-letter streams now),
  ``relayq_unreadable_entries`` (poison entries a worker has yet to dead-letter),
  ``relayq_workers_live``.

What each worker did (retries, throttles, latencies, by channel) is on its own endpoint
(``consumers.worker_metrics_export``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from relayq.consumers.tenant_labels import busiest_tenants, fold_tenants
from relayq.ops.counts import NamespaceCounts, read_counts
from relayq.ops.live_workers import live_workers
from relayq.streams.keys import Keys

__all__ = ("CONTENT_TYPE", "NamespaceCollector", "read_metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus's text format, as every Prometheus version reads it."""
_COUNTERS = {
    "delivered": "Messages delivered (the provider accepted them), once each",
    "dead_lettered": "Messages moved to the dead-letter stream, once each",
}
_GAUGES = {
    "waiting": "Messages accepted and not yet read by a worker",
    "in_flight": "Messages read by a worker and not finished, no backoff running",
    "retrying": "Messages whose last attempt failed, waiting for their next",
    "delayed": "Messages sent with a delay that is not yet due",
}


class NamespaceCollector(Collector):
    """The metric families of one reading of the namespace."""

    def __init__(
        self, counts: NamespaceCounts, levels: Iterable[str], workers: int, top_tenants: int
    ) -> None:
        self._counts = counts
        self._levels = list(levels)
        self._workers = workers
        self._top_tenants = top_tenants

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._level_gauges()
        counts = self._counts
        yield GaugeMetricFamily(
            "relayq_dead_letter_entries",
            "Entries in the dead-letter streams (replayed and deleted ones are gone)",
            counts.dead_letter_entries,
        )
        yield GaugeMetricFamily(
            "relayq_unreadable_entries",
            "Stream entries that do not decode as messages (workers dead-letter them)",
            counts.unreadable,
        )
        yield GaugeMetricFamily(
            "relayq_workers_live", "Workers whose heartbeat has not expired", self._workers
        )

    def _counters(self) -> Iterator[Metric]:
        raw: dict[tuple[str, ...], int] = {}
        for row in self._counts.rows:
            for state in _COUNTERS:
                value = getattr(row, state)
                if value:
                    raw[(state, row.priority, row.tenant)] = value
        folded = fold_tenants(raw, busiest_tenants(raw, self._top_tenants))
        for state, documentation in _COUNTERS.items():
            family = CounterMetricFamily(
                f"relayq_messages_{state}", documentation, labels=("priority", "tenant")
            )
            for (counted, priority, tenant), value in sorted(folded.items()):
                if counted == state:
                    family.add_metric([priority, tenant], value)
            yield family

    def _level_gauges(self) -> Iterator[Metric]:
        counts = self._counts
        for state, documentation in _GAUGES.items():
            family = GaugeMetricFamily(
                f"relayq_messages_{state}", documentation, labels=("priority",)
            )
            for level in self._levels:
                family.add_metric([level], counts.total(state, level))
            yield family
        age = GaugeMetricFamily(
            "relayq_oldest_waiting_age_seconds",
            "Age of the oldest waiting message (0: none waiting)",
            labels=("priority",),
        )
        for level in self._levels:
            age.add_metric([level], self._oldest_age(level))
        yield age

    def _oldest_age(self, level: str) -> float:
        oldest = [
            row.oldest_waiting_ms
            for row in self._counts.rows
            if row.priority == level and row.oldest_waiting_ms is not None
        ]
        return max(0, self._counts.at_ms - min(oldest)) / 1000 if oldest else 0.0


async def read_metrics(client: Redis, keys: Keys, top_tenants: int) -> bytes:
    """The namespace's metrics now, in Prometheus's text format."""
    counts = await read_counts(client, keys)
    workers = await live_workers(client, keys)
    collector = NamespaceCollector(counts, keys.levels.names, len(workers), top_tenants)
    return generate_latest(collector)
