"""OTLP metrics export (issue 16, item 4): with ``RELAYQ_OTLP_METRICS=1`` a real worker
process pushes its counters to a real OTLP/HTTP collector on 127.0.0.1, whose protobuf
requests decode to exactly the counts of a run of known sends; the last counts go out when
the worker stops; with the switch off nothing ever reaches the collector; without the
``relayq[otlp]`` extra the worker refuses to start with one line naming it.
"""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint, Metric

from relayq.consumers.metrics import ATTEMPT_BUCKETS, Buckets, WorkerMetrics
from relayq.consumers.otlp_metrics import start_otlp_metrics
from relayq.ops.local_provider import ProviderThread
from relayq.streams.errors import ConfigurationError
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, WorkerProcess, wait_until, worker_environment
from tests.test_metrics import _send

_EXPORTER = "opentelemetry.exporter.otlp.proto.http.metric_exporter"
_CONSUMED = "messaging.client.consumed.messages"
_BY_OUTCOME = ("relayq.outcome", "messaging.destination.name", "relayq.priority", "relayq.tenant")


class Collector:
    """An OTLP/HTTP collector on 127.0.0.1: keeps each request posted to ``/v1/metrics``
    (decoded) and counts every request on any path."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.hits = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                collector.hits += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/metrics":
                    collector.requests.append(ExportMetricsServiceRequest.FromString(body))
                answer = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/metrics" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/metrics"

    def env(self, interval_ms: int, **more: str) -> dict[str, str]:
        """A worker's environment that exports here every ``interval_ms``."""
        return {
            "RELAYQ_OTLP_METRICS": "1",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": self.url,
            "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
            **more,
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def collector() -> Iterator[Collector]:
    started = Collector()
    try:
        yield started
    finally:
        started.stop()


# -- reading a request ----------------------------------------------------------------------


def _attributes(pairs: list[KeyValue]) -> dict[str, str]:
    return {pair.key: pair.value.string_value for pair in pairs}


def _metrics(request: ExportMetricsServiceRequest, name: str) -> list[Metric]:
    return [
        metric
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
    ]


def _sums(
    request: ExportMetricsServiceRequest, name: str, keys: tuple[str, ...]
) -> dict[tuple[str, ...], int]:
    """The points of a sum by the values of ``keys``; every point has messaging.system."""
    points: dict[tuple[str, ...], int] = {}
    for metric in _metrics(request, name):
        for point in metric.sum.data_points:
            attributes = _attributes(list(point.attributes))
            assert attributes["messaging.system"] == "relayq"
            points[tuple(attributes[key] for key in keys)] = point.as_int
    return points


def _histograms(
    request: ExportMetricsServiceRequest, name: str, keys: tuple[str, ...]
) -> dict[tuple[str, ...], HistogramDataPoint]:
    points = {}
    for metric in _metrics(request, name):
        assert metric.unit == "s"
        for point in metric.histogram.data_points:
            attributes = _attributes(list(point.attributes))
            points[tuple(attributes[key] for key in keys)] = point
    return points


def _consumed(collector: Collector) -> dict[tuple[str, ...], int]:
    """The consumed-messages counter of the latest request (none yet: empty)."""
    return _sums(collector.requests[-1], _CONSUMED, _BY_OUTCOME) if collector.requests else {}


# -- a worker process ------------------------------------------------------------------------


def _start(workers: WorkerPool, url: str, environment: Mapping[str, str]) -> WorkerProcess:
    """A worker on the test's settings, with ``environment`` added."""
    return workers.start(url, burst=False, settings=None, **environment)


_KNOWN_RUN = {
    ("delivered", "webhook", "normal", "A"): 4,
    ("delivered", "sms", "high", "B"): 2,
    ("delivered", "webhook", "normal", "T"): 1,
    ("retried", "webhook", "normal", "R"): 2,
    ("throttled", "webhook", "normal", "T"): 1,
    ("dead_lettered", "webhook", "normal", "D"): 2,
    ("dead_lettered", "webhook", "normal", "R"): 1,
}


def test_a_worker_exports_the_counts_of_a_known_run(
    settings: Settings, collector: Collector, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    provider = make_provider(throttle_tenants={"T": 1})
    worker = _start(workers, provider.url, collector.env(200))
    _send(settings, "A", 4)
    _send(settings, "B", 2, priority="high", channel="sms")
    _send(settings, "T", 1)  # throttled once, then delivered
    _send(settings, "D", 2, recipient="reject-1")  # 400: dead-lettered at once
    _send(settings, "R", 1, recipient="down-1")  # 500: retried twice, then dead-lettered
    wait_until(
        lambda: _consumed(collector) == _KNOWN_RUN,
        timeout=60,
        message="the known run exported while the worker runs",
    )
    assert len(collector.requests) >= 2  # periodic: more than the one at the end

    latest = collector.requests[-1]
    (resource,) = latest.resource_metrics
    identity = _attributes(list(resource.resource.attributes))
    assert identity["service.name"] == "relayq-worker"
    assert f"-{worker.pid}-" in identity["service.instance.id"]
    attempts = _histograms(latest, "messaging.process.duration", ("messaging.destination.name",))
    assert {key: point.count for key, point in attempts.items()} == {
        ("webhook",): 4 + 1 + 1 + 2 + 3, ("sms",): 2,
    }  # fmt: skip
    latency = _histograms(
        latest, "relayq.delivery.latency", ("messaging.destination.name", "relayq.priority")
    )
    assert {key: point.count for key, point in latency.items()} == {
        ("webhook", "normal"): 5, ("sms", "high"): 2,
    }  # fmt: skip
    for point in (*attempts.values(), *latency.values()):
        assert sum(point.bucket_counts) == point.count and point.sum > 0
    assert _sums(latest, "relayq.worker.in_flight", ()) == {(): 0}

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert _consumed(collector) == _KNOWN_RUN  # the last export, at the stop, agrees


def test_the_last_counts_go_out_when_the_worker_stops(
    settings: Settings, collector: Collector, provider: ProviderThread, workers: WorkerPool
) -> None:
    hour = 3_600_000
    worker = _start(workers, provider.url, collector.env(hour, RELAYQ_METRICS_TOP_TENANTS="2"))
    _send(settings, "A", 3)
    _send(settings, "B", 2)
    _send(settings, "C", 1)
    wait_until(lambda: len(provider.deliveries()) == 6, timeout=60, message="6 delivered")
    assert collector.requests == []  # the first export is an hour away
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert len(collector.requests) == 1
    assert _consumed(collector) == {
        ("delivered", "webhook", "normal", "A"): 3,
        ("delivered", "webhook", "normal", "B"): 2,
        ("delivered", "webhook", "normal", "other"): 1,  # the busiest 2 are named
    }


def test_with_the_switch_off_nothing_reaches_the_collector(
    settings: Settings, collector: Collector, provider: ProviderThread, workers: WorkerPool
) -> None:
    environment = collector.env(100)
    del environment["RELAYQ_OTLP_METRICS"]  # the OTel variables alone do not switch it on
    worker = _start(workers, provider.url, environment)
    _send(settings, "A", 2)
    wait_until(lambda: len(provider.deliveries()) == 2, timeout=60, message="2 delivered")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0  # a worker exporting would have flushed by now
    assert collector.hits == 0


# -- in process -----------------------------------------------------------------------------


async def test_histograms_carry_the_exact_buckets_and_sum(
    settings: Settings, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in collector.env(3_600_000).items():
        monkeypatch.setenv(name, value)
    metrics = WorkerMetrics()
    buckets = metrics.attempt_seconds["sms"] = Buckets.of(ATTEMPT_BUCKETS)
    for seconds in (0.001, 0.005, 0.02, 0.02, 99.0):
        buckets.observe(seconds)
    metrics.in_flight = 3
    export = start_otlp_metrics(settings.replace(otlp_metrics=True), metrics, "w-1")
    assert export is not None
    await export.aclose()

    (request,) = collector.requests
    (point,) = _histograms(
        request, "messaging.process.duration", ("messaging.destination.name",)
    ).values()
    assert list(point.explicit_bounds) == list(ATTEMPT_BUCKETS)
    assert list(point.bucket_counts) == [2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert point.count == 5 and point.sum == pytest.approx(99.046)
    assert not point.HasField("min") and not point.HasField("max")  # not kept: not sent
    assert _metrics(request, "relayq.delivery.latency") == []  # nothing delivered
    assert _sums(request, "relayq.worker.in_flight", ()) == {(): 3}


def test_off_by_default(settings: Settings) -> None:
    assert not Settings().otlp_metrics
    assert start_otlp_metrics(settings, WorkerMetrics(), "w-1") is None


def test_without_the_extra_the_error_names_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, _EXPORTER, None)  # makes its import fail
    with pytest.raises(ConfigurationError, match=r"pip install 'relayq\[otlp\]'$"):
        start_otlp_metrics(settings.replace(otlp_metrics=True), WorkerMetrics(), "w-1")


@pytest.mark.parametrize("interval", ["abc", "0", "-5", "inf"])
def test_a_bad_export_interval_is_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, interval: str
) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", interval)
    with pytest.raises(ConfigurationError, match=f"OTEL_METRIC_EXPORT_INTERVAL .*'{interval}'"):
        start_otlp_metrics(settings.replace(otlp_metrics=True), WorkerMetrics(), "w-1")


def test_a_worker_without_the_extra_refuses_to_start_in_one_line(settings: Settings) -> None:
    script = (
        f"import sys; sys.modules[{_EXPORTER!r}] = None; "
        "from relayq.ops.cli import main; sys.exit(main(['worker']))"
    )
    environment = worker_environment(
        settings.replace(deliverer="webhook", webhook_url="http://127.0.0.1:9/"),
        RELAYQ_OTLP_METRICS="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1:] == [
        "relayq: error: RELAYQ_OTLP_METRICS=1 needs the OpenTelemetry SDK and OTLP/HTTP "
        f"exporter ({_EXPORTER} is missing): pip install 'relayq[otlp]'"
    ]
    assert "Traceback" not in done.stderr
