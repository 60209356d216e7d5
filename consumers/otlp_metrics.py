"""A worker's metrics pushed over OTLP/HTTP (``RELAYQ_OTLP_METRICS=1``; ``relayq[otlp]``).

Off by default; ``RELAYQ_OTLP_METRICS`` is the one switch. Everything else is the standard
OpenTelemetry variables, read by the SDK's exporter: ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/metrics``; default ``http://localhost:4318``),
``..._HEADERS``, ``..._TIMEOUT``, ``..._COMPRESSION``, ``OTEL_METRIC_EXPORT_INTERVAL`` (ms,
default 60000), ``OTEL_SERVICE_NAME`` (default ``relayq-worker``) and
``OTEL_RESOURCE_ATTRIBUTES``. ``service.instance.id`` is the worker id, so that the
cumulative series of two workers never merge.

What this process did since it started (cumulative), as the Prometheus endpoint shows it
(``consumers.worker_metrics_export``), from the same ``WorkerMetrics`` counts:

- ``messaging.client.consumed.messages`` (``{message}``): counter by ``messaging.system``
  (``relayq``), ``messaging.destination.name`` (the channel), ``relayq.priority``,
  ``relayq.tenant`` (the busiest ``RELAYQ_METRICS_TOP_TENANTS``, the rest ``other``) and
  ``relayq.outcome`` (``delivered``, ``retried``, ``throttled``, ``dead_lettered``: each
  time a worker takes a message ends in one of them);
- ``messaging.process.duration`` (s): histogram of one delivery attempt, by channel;
- ``relayq.delivery.latency`` (s): histogram from ``send()`` to the provider's success,
  by channel and ``relayq.priority``;
- ``relayq.worker.in_flight`` (``{delivery}``): up-down counter, deliveries under way.

Nothing runs per message: the counters are observable instruments whose callbacks read
``WorkerMetrics`` at each collection, in the SDK's export thread. The SDK has no instrument
that takes counts already bucketed, so the two histograms are built from ``WorkerMetrics``'
buckets and added to each batch as it is exported: exact counts, buckets and sums, always
cumulative, without min or max (not kept).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Observation

from relayq.consumers.metrics import Buckets, WorkerMetrics
from relayq.consumers.tenant_labels import TenantLabels
from relayq.streams.errors import ConfigurationError
from relayq.streams.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import Metric, MetricExporter, MetricsData
    from opentelemetry.sdk.resources import Resource

__all__ = ("INSTRUMENTATION_NAME", "OtlpMetrics", "start_otlp_metrics")

INSTRUMENTATION_NAME = "relayq"
_SYSTEM = {"messaging.system": "relayq"}
_INTERVAL = "OTEL_METRIC_EXPORT_INTERVAL"
_DEFAULT_INTERVAL_MS = 60_000.0
_FLUSH_TIMEOUT_MS = 5_000
"""Longest a stopping worker waits for the last export (an absent collector)."""
_MISSING = (
    "RELAYQ_OTLP_METRICS=1 needs the OpenTelemetry SDK and OTLP/HTTP exporter "
    "({name} is missing): pip install 'relayq[otlp]'"
)


class _Readings:
    """What the instruments and the exporter read from one ``WorkerMetrics``."""

    def __init__(self, metrics: WorkerMetrics, top_tenants: int) -> None:
        self._metrics = metrics
        self._tenants = TenantLabels(top_tenants)
        self.started_ns = time.time_ns()

    def consumed(self, _options: CallbackOptions) -> Iterable[Observation]:
        outcomes = self._metrics.outcomes.copy()  # one C-level copy: the loop keeps counting
        for (outcome, channel, priority, tenant), value in self._tenants.fold(outcomes).items():
            yield Observation(value, {
                **_SYSTEM,
                "messaging.destination.name": channel,
                "relayq.priority": priority,
                "relayq.tenant": tenant,
                "relayq.outcome": outcome,
            })  # fmt: skip

    def in_flight(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._metrics.in_flight, _SYSTEM)

    def histograms(self) -> list[Metric]:
        metrics = self._metrics
        attempts = [
            ({"messaging.destination.name": channel}, buckets)
            for channel, buckets in metrics.attempt_seconds.copy().items()
        ]
        latency = [
            ({"messaging.destination.name": channel, "relayq.priority": priority}, buckets)
            for (channel, priority), buckets in metrics.latency.copy().items()
        ]
        now = time.time_ns()
        made = [
            _histogram("messaging.process.duration", "One delivery attempt", attempts,
                       self.started_ns, now),
            _histogram("relayq.delivery.latency", "From send() to the provider's success",
                       latency, self.started_ns, now),
        ]  # fmt: skip
        return [metric for metric in made if metric.data.data_points]


def _histogram(
    name: str,
    description: str,
    series: Sequence[tuple[dict[str, str], Buckets]],
    start_ns: int,
    now_ns: int,
) -> Metric:
    """One cumulative histogram from ``Buckets`` by their attributes."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Histogram,
        HistogramDataPoint,
        Metric,
    )

    points = []
    for attributes, buckets in series:
        counts = list(buckets.counts)  # one copy: the loop thread keeps counting
        points.append(HistogramDataPoint(
            attributes={**_SYSTEM, **attributes},
            start_time_unix_nano=start_ns,
            time_unix_nano=now_ns,
            count=sum(counts),
            sum=buckets.total,
            bucket_counts=counts,
            explicit_bounds=buckets.bounds,
            # Not kept by WorkerMetrics; the OTLP encoder leaves a None min/max unset.
            min=None,  # type: ignore[arg-type]
            max=None,  # type: ignore[arg-type]
        ))  # fmt: skip
    temporality = AggregationTemporality.CUMULATIVE
    return Metric(name, description, "s", Histogram(points, temporality))


def _with_histograms(
    data: MetricsData, histograms: Sequence[Metric], resource: Resource
) -> MetricsData:
    """``data`` with ``histograms`` added to relayq's scope (made if absent)."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    if not data.resource_metrics:
        data = MetricsData([ResourceMetrics(resource, [], "")])
    first, *others = data.resource_metrics
    scopes = list(first.scope_metrics)
    mine = [i for i, s in enumerate(scopes) if s.scope.name == INSTRUMENTATION_NAME]
    if mine:
        scope = scopes[mine[0]]
        scopes[mine[0]] = ScopeMetrics(scope.scope, [*scope.metrics, *histograms], scope.schema_url)
    else:
        scopes.append(ScopeMetrics(InstrumentationScope(INSTRUMENTATION_NAME), histograms, ""))
    return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *others])


def _exporter(histograms: Callable[[], list[Metric]], resource: Resource) -> MetricExporter:
    """The SDK's OTLP/HTTP exporter (configured by ``OTEL_EXPORTER_OTLP_*``), adding the
    histograms to each batch."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    class WithHistograms(OTLPMetricExporter):
        def export(
            self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kw: Any
        ) -> MetricExportResult:
            data = _with_histograms(metrics_data, histograms(), resource)
            return super().export(data, timeout_millis, **kw)

    return WithHistograms()


def _interval_ms() -> float:
    raw = os.environ.get(_INTERVAL, "").strip()
    if not raw:
        return _DEFAULT_INTERVAL_MS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ConfigurationError(f"{_INTERVAL} must be a positive number of ms, not {raw!r}")
    return value


def _resource(worker_id: str) -> Resource:
    """``service.name`` ``relayq-worker`` and the worker id, unless the OTel variables
    name them."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    named = OTELResourceDetector().detect().attributes
    return Resource.create({
        "service.name": "relayq-worker", "service.instance.id": worker_id, **named,
    })  # fmt: skip


def _check_installed() -> None:
    for name in (
        "opentelemetry.sdk.metrics",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    ):
        try:
            importlib.import_module(name)
        except ImportError:
            raise ConfigurationError(_MISSING.format(name=name)) from None


class OtlpMetrics:
    """A running export: a MeterProvider of its own (the global one is the application's)
    whose reader exports every ``OTEL_METRIC_EXPORT_INTERVAL`` ms from a daemon thread."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider

    async def aclose(self) -> None:
        """Export the last counts (at most ``_FLUSH_TIMEOUT_MS``), then stop."""
        await asyncio.to_thread(self._provider.shutdown, timeout_millis=_FLUSH_TIMEOUT_MS)


def start_otlp_metrics(
    settings: Settings, metrics: WorkerMetrics, worker_id: str
) -> OtlpMetrics | None:
    """Start exporting ``metrics`` when ``settings.otlp_metrics`` is on (else ``None``).
    Raises ``ConfigurationError`` when the extra is missing or the interval is bad."""
    if not settings.otlp_metrics:
        return None
    _check_installed()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    interval = _interval_ms()
    readings = _Readings(metrics, settings.metrics_top_tenants)
    resource = _resource(worker_id)
    reader = PeriodicExportingMetricReader(
        _exporter(readings.histograms, resource), export_interval_millis=interval
    )
    # Stopped by aclose() (bounded), not at exit: a collector down must not hold up an exit.
    provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    meter = provider.get_meter(INSTRUMENTATION_NAME)
    meter.create_observable_counter(
        "messaging.client.consumed.messages", [readings.consumed], "{message}",
        "Messages this worker took, by how each attempt ended",
    )  # fmt: skip
    meter.create_observable_up_down_counter(
        "relayq.worker.in_flight", [readings.in_flight], "{delivery}",
        "Deliveries under way in this worker",
    )  # fmt: skip
    return OtlpMetrics(provider)
