"""Prometheus metrics (issue 16, item 4): the API's ``/metrics`` (the namespace's state from
Redis) and a worker's own endpoint (``RELAYQ_METRICS_PORT``), each scraped over HTTP from
real processes and parsed with prometheus_client's parser; their counters equal a state
built by real sends, deliveries, retries, throttles and dead letters, exactly; the tenant
label keeps the busiest N tenants and counts the rest as ``other``.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from relayq.consumers.metrics import LATENCY_BUCKETS, Buckets, WorkerMetrics
from relayq.consumers.tenant_labels import OTHER, TenantLabels, busiest_tenants, fold_tenants
from relayq.consumers.worker_metrics_export import WorkerCollector
from relayq.ops.counts import NamespaceCounts
from relayq.ops.metrics_exposition import NamespaceCollector
from relayq.producers import SyncProducer
from relayq.streams.settings import Settings
from tests.api_support import ApiServer, free_port
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, WorkerProcess, wait_until

Samples = dict[str, dict[tuple[str, ...], float]]
"""Sample name -> label values (in the order asked) -> value."""


def _parse(text: str, labels: Mapping[str, tuple[str, ...]]) -> Samples:
    """Every sample of the families in ``labels`` (family name -> its label names)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        if family.name not in labels:
            continue
        for sample in family.samples:
            names = labels[family.name]
            if sample.name.endswith("_bucket"):
                names = (*names, "le")
            key = tuple(sample.labels[name] for name in names)
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def _send(
    settings: Settings,
    tenant: str,
    count: int,
    *,
    recipient: str = "+15550100",
    priority: str = "normal",
    channel: str | None = None,
) -> None:
    with SyncProducer(settings) as producer:
        for n in range(count):
            producer.send(
                tenant=tenant,
                conversation=f"{tenant}-{n % 2}",
                recipient=recipient,
                payload={"n": n},
                priority=priority,
                channel=channel,
            )


def _scrape_worker(port: int) -> str:
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    return answer.text


def _start_worker(workers: WorkerPool, url: str, port: int) -> WorkerProcess:
    worker = workers.start(url, RELAYQ_METRICS_PORT=str(port))
    wait_until(
        lambda: _answers(port), timeout=30, message=f"worker metrics on {port}:\n{workers.logs()}"
    )
    return worker


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _api_metrics(api: ApiServer) -> str:
    answer = api.call("GET", "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text


_API_LABELS = {
    "relayq_messages_delivered": ("priority", "tenant"),
    "relayq_messages_dead_lettered": ("priority", "tenant"),
    "relayq_messages_waiting": ("priority",),
    "relayq_messages_in_flight": ("priority",),
    "relayq_messages_retrying": ("priority",),
    "relayq_messages_delayed": ("priority",),
    "relayq_oldest_waiting_age_seconds": ("priority",),
    "relayq_dead_letter_entries": (),
    "relayq_workers_live": (),
}
_WORKER_LABELS = {
    **{
        f"relayq_worker_messages_{outcome}": ("channel", "priority", "tenant")
        for outcome in ("delivered", "retried", "throttled", "dead_lettered")
    },
    "relayq_delivery_latency_seconds": ("channel", "priority"),
    "relayq_delivery_attempt_duration_seconds": ("channel",),
    "relayq_worker_in_flight": (),
}


def test_both_endpoints_count_a_known_run_exactly(
    settings: Settings, api_server: ApiServer, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    provider = make_provider(throttle_tenants={"T": 1})
    port = free_port()
    worker = _start_worker(workers, provider.url, port)
    _send(settings, "A", 4)
    _send(settings, "B", 2, priority="high", channel="sms")
    _send(settings, "T", 1)  # throttled once, then delivered
    _send(settings, "D", 2, recipient="reject-1")  # 400: dead-lettered at once
    _send(settings, "R", 1, recipient="down-1")  # 500: retried twice, then dead-lettered
    wait_until(
        lambda: (
            api_server.call("GET", "/v1/stats").json()["failed"] == 3
            and len(provider.deliveries()) == 7
        ),
        timeout=60,
        message="7 delivered and 3 dead-lettered",
    )

    scraped = _parse(_scrape_worker(port), _WORKER_LABELS)
    assert scraped["relayq_worker_messages_delivered_total"] == {
        ("webhook", "normal", "A"): 4, ("sms", "high", "B"): 2, ("webhook", "normal", "T"): 1,
    }  # fmt: skip
    assert scraped["relayq_worker_messages_retried_total"] == {("webhook", "normal", "R"): 2}
    assert scraped["relayq_worker_messages_throttled_total"] == {("webhook", "normal", "T"): 1}
    assert scraped["relayq_worker_messages_dead_lettered_total"] == {
        ("webhook", "normal", "D"): 2, ("webhook", "normal", "R"): 1,
    }  # fmt: skip
    latency = scraped["relayq_delivery_latency_seconds_count"]
    assert latency == {("webhook", "normal"): 5, ("sms", "high"): 2}
    assert scraped["relayq_delivery_latency_seconds_bucket"][("sms", "high", "+Inf")] == 2
    attempts = scraped["relayq_delivery_attempt_duration_seconds_count"]
    assert attempts == {("webhook",): 4 + 1 + 1 + 2 + 3, ("sms",): 2}
    assert scraped["relayq_worker_in_flight"] == {(): 0}

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    _send(settings, "W", 3, priority="low")
    shown = _parse(_api_metrics(api_server), _API_LABELS)
    assert shown["relayq_messages_delivered_total"] == {
        ("normal", "A"): 4, ("high", "B"): 2, ("normal", "T"): 1,
    }  # fmt: skip
    assert shown["relayq_messages_dead_lettered_total"] == {("normal", "D"): 2, ("normal", "R"): 1}
    assert shown["relayq_messages_waiting"] == {("high",): 0, ("normal",): 0, ("low",): 3}
    for state in ("in_flight", "retrying", "delayed"):
        assert set(shown[f"relayq_messages_{state}"].values()) == {0}
    ages = shown["relayq_oldest_waiting_age_seconds"]
    assert ages[("high",)] == ages[("normal",)] == 0 and 0 <= ages[("low",)] < 60
    assert shown["relayq_dead_letter_entries"] == {(): 3}
    assert shown["relayq_workers_live"] == {(): 0}


def test_the_api_metrics_need_an_admin_or_read_only_key(api_server: ApiServer) -> None:
    assert api_server.call("GET", "/metrics", key="").status_code == 401
    tenant_key = api_server.create_key("--tenant", "A")
    assert api_server.call("GET", "/metrics", key=tenant_key).status_code == 403
    read_key = api_server.create_key("--read-only")
    assert api_server.call("GET", "/metrics", key=read_key).status_code == 200


def test_the_busiest_20_of_25_tenants_get_a_label_the_rest_are_other(
    settings: Settings, api_server: ApiServer, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    provider = make_provider()
    port = free_port()
    worker = _start_worker(workers, provider.url, port)
    for i in range(25):
        _send(settings, f"t{i:02d}", i + 1)  # t24 the busiest, t00 the quietest
    wait_until(lambda: len(provider.deliveries()) == 325, timeout=60, message="325 delivered")
    named = {f"t{i:02d}": float(i + 1) for i in range(5, 25)}
    expected = {**named, OTHER: float(1 + 2 + 3 + 4 + 5)}

    api = _parse(_api_metrics(api_server), _API_LABELS)["relayq_messages_delivered_total"]
    assert {tenant: value for (_, tenant), value in api.items()} == expected
    scraped = _parse(_scrape_worker(port), _WORKER_LABELS)
    delivered = scraped["relayq_worker_messages_delivered_total"]
    assert {tenant: value for (_, _, tenant), value in delivered.items()} == expected
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


# -- the guard and the buckets, without processes ------------------------------------------


def test_names_go_to_the_busiest_while_left_and_are_never_taken_back() -> None:
    labels = TenantLabels(top=3)
    assert labels.fold({("d", "a"): 5}) == {("d", "a"): 5}
    # Two names left, three newcomers: the busiest two get them (ties by name).
    seen = labels.fold({("d", "a"): 5, ("d", "b"): 1, ("d", "c"): 2, ("d", "e"): 2})
    assert seen == {("d", "a"): 5, ("d", "c"): 2, ("d", "e"): 2, ("d", OTHER): 1}
    # b outgrows everyone later: it stays other, and no series goes down.
    later = labels.fold({("d", "a"): 5, ("d", "b"): 50, ("d", "c"): 2, ("d", "e"): 3})
    assert later == {("d", "a"): 5, ("d", "c"): 2, ("d", "e"): 3, ("d", OTHER): 50}


def test_stateless_fold_sums_the_tenants_outside_the_busiest() -> None:
    counts = {("d", "a"): 1, ("d", "b"): 5, ("r", "b"): 1, ("d", "c"): 3}
    assert busiest_tenants(counts, 2) == {"b", "c"}
    assert fold_tenants(counts, {"b", "c"}) == {
        ("d", OTHER): 1, ("d", "b"): 5, ("r", "b"): 1, ("d", "c"): 3,
    }  # fmt: skip


@pytest.mark.parametrize(("value", "index"), [(0.0, 0), (0.01, 0), (0.011, 1), (1e9, -1)])
def test_a_value_lands_in_the_first_bucket_whose_bound_holds_it(value: float, index: int) -> None:
    buckets = Buckets.of(LATENCY_BUCKETS)
    buckets.observe(value)
    assert buckets.counts[index] == 1 and sum(buckets.counts) == 1
    assert buckets.total == value


def test_the_grafana_dashboard_uses_only_metrics_relayq_exports() -> None:
    dashboard = json.loads((Path(__file__).parents[1] / "ops/grafana/relayq.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\b(?:relayq|process)_\w+", expr)}
    empty = NamespaceCounts(namespace="rq", at_ms=0, rows=[], dead_letter_entries=0)
    collectors = [
        NamespaceCollector(empty, ["normal"], 0, 20),
        WorkerCollector(WorkerMetrics(), 20),
    ]
    exported = {family.name for collector in collectors for family in collector.collect()}
    exposed = {f"{n}{suffix}" for n in exported for suffix in ("", "_total", "_bucket")}
    assert used - exposed == {"process_resident_memory_bytes"}  # prometheus_client's own
    assert len(exprs) >= 15
