"""A worker's own Prometheus endpoint (``RELAYQ_METRICS_PORT``; 0 = none), on 127.0.0.1.

What this process did, since it started (per process: Prometheus's ``instance`` label
tells the workers apart; sum over it for the cluster):

- ``relayq_worker_messages_delivered_total``, ``..._retried_total`` (one per failed
  attempt that will be tried again), ``..._throttled_total`` (a provider's 429 or a
  channel found down: no attempt spent), ``..._dead_lettered_total``: counters by
  ``channel``, ``priority`` and ``tenant`` (the busiest ``RELAYQ_METRICS_TOP_TENANTS``
  tenants by name, the rest as ``other``: ``consumers.tenant_labels.TenantLabels``).
- ``relayq_delivery_latency_seconds``: histogram by ``channel`` and ``priority`` of the
  time from ``send()`` accepting a message to its provider's success.
- ``relayq_delivery_attempt_duration_seconds``: histogram by ``channel`` of one
  delivery attempt, whatever its outcome (OpenTelemetry's ``messaging.process.duration``).
- ``relayq_worker_in_flight``: deliveries under way now; and prometheus_client's
  ``process_*`` metrics (resident memory against the unit's ``MemoryMax``, CPU, fds).

The HTTP server is prometheus_client's, in a daemon thread: it answers while the event
loop is busy, and reads the counters the loop keeps (``consumers.metrics``) when scraped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from relayq.consumers.metrics import OUTCOMES, Buckets, WorkerMetrics
from relayq.consumers.tenant_labels import TenantLabels
from relayq.streams.settings import Settings

__all__ = ("ADDRESS", "WorkerCollector", "serve_metrics")

_log = structlog.get_logger(__name__)

Key = tuple[str, ...]

ADDRESS = "127.0.0.1"
"""Where the endpoint listens (a Prometheus or agent on the same host scrapes it)."""
_OUTCOME_HELP = {
    "delivered": "Messages this worker delivered (the provider accepted them)",
    "retried": "Failed delivery attempts this worker will try again",
    "throttled": "Attempts a provider throttled or a down channel held back (none spent)",
    "dead_lettered": "Messages this worker moved to the dead-letter stream",
}


def _histogram_family(
    name: str, documentation: str, labels: tuple[str, ...], series: Mapping[Key, Buckets]
) -> HistogramMetricFamily:
    """One histogram family from ``Buckets`` by label values (cumulative, as exposed)."""
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, buckets in sorted(series.items()):
        counts = list(buckets.counts)  # one copy: the loop thread keeps counting
        bounds = [*map(floatToGoString, buckets.bounds), "+Inf"]
        cumulative, running = [], 0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        family.add_metric(list(label_values), cumulative, sum_value=buckets.total)
    return family


class WorkerCollector(Collector):
    """The metrics of one ``WorkerMetrics``, built at each scrape."""

    def __init__(self, metrics: WorkerMetrics, top_tenants: int) -> None:
        self._metrics = metrics
        self._tenants = TenantLabels(top_tenants)

    def collect(self) -> Iterable[Metric]:
        # Each dict is copied at once (a C-level copy the loop thread cannot interleave).
        metrics = self._metrics
        outcomes: dict[Key, int] = dict(metrics.outcomes.items())
        latency: dict[Key, Buckets] = dict(metrics.latency.items())
        yield from self._outcome_families(outcomes)
        yield _histogram_family(
            "relayq_delivery_latency_seconds",
            "Time from send() accepting a message to its provider's success",
            ("channel", "priority"),
            latency,
        )
        yield _histogram_family(
            "relayq_delivery_attempt_duration_seconds",
            "Duration of one delivery attempt, whatever its outcome",
            ("channel",),
            {(channel,): b for channel, b in list(metrics.attempt_seconds.items())},
        )
        yield GaugeMetricFamily(
            "relayq_worker_in_flight", "Deliveries under way in this worker", metrics.in_flight
        )

    def _outcome_families(self, outcomes: Mapping[Key, int]) -> Iterator[Metric]:
        families = {
            outcome: CounterMetricFamily(
                f"relayq_worker_messages_{outcome}",
                _OUTCOME_HELP[outcome],
                labels=("channel", "priority", "tenant"),
            )
            for outcome in OUTCOMES
        }
        for (outcome, *labels), value in sorted(self._tenants.fold(outcomes).items()):
            families[outcome].add_metric(labels, value)
        yield from families.values()


def _registry(settings: Settings, metrics: WorkerMetrics) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(metrics, settings.metrics_top_tenants))
    ProcessCollector(registry=registry)
    return registry


async def serve_metrics(settings: Settings, metrics: WorkerMetrics) -> None:
    """Serve ``metrics`` on ``settings.metrics_port`` until cancelled. A port that cannot
    be bound is logged as an error and the worker goes on delivering without it."""
    port = settings.metrics_port
    try:
        server, thread = start_http_server(port, ADDRESS, _registry(settings, metrics))
    except OSError as exc:
        _log.error("metrics_port_unavailable", port=port, error=str(exc))
        await asyncio.Event().wait()
        return
    _log.info("metrics_serving", url=f"http://{ADDRESS}:{server.server_port}/metrics")
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=1)
