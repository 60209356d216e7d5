"""Telemetry: one trace from send() to the provider. The producer's PRODUCER span, a
CONSUMER span per delivery attempt (child of and linked to it) and an HTTP CLIENT span
under each attempt all share one trace id."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from relayq.consumers import WebhookDeliverer, Worker
from relayq.producers import Producer, SyncProducer
from relayq.streams.codec import decode_entry
from relayq.streams.keys import Keys
from relayq.streams.message import Priority
from relayq.streams.settings import Settings
from relayq.streams.telemetry import tracing_enabled
from tests.conftest import ProviderFactory


def _reset_global_tracer_provider() -> None:
    # OpenTelemetry lets a process set its global provider once; tests must undo it so the
    # rest of the suite runs with tracing off, as applications without a provider do.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """An SDK TracerProvider installed globally for one test, exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _reset_global_tracer_provider()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        _reset_global_tracer_provider()
        assert not tracing_enabled()


def _seed_failing_once() -> int:
    """A provider seed whose first request fails (roll < 0.5) and second succeeds."""
    for seed in range(10_000):
        rolls = random.Random(seed)
        if rolls.random() < 0.5 <= rolls.random():
            return seed
    raise AssertionError("no seed found")


def _one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> list[ReadableSpan]:
    return sorted(
        (s for s in spans if s.name == name and s.kind == kind), key=lambda s: s.start_time or 0
    )


async def test_send_deliver_and_http_spans_share_one_trace(
    exporter: InMemorySpanExporter, settings: Settings, keys: Keys, make_provider: ProviderFactory
) -> None:
    assert tracing_enabled()
    # The first attempt gets a 503, the second a 200: two attempts, one trace.
    provider = make_provider(fail_rate=0.5, seed=_seed_failing_once())
    async with Producer(settings) as producer:
        message_id = await producer.send(
            tenant="acme", conversation="c-1", recipient="+15550100", payload={"t": 1}
        )
    deliverer = WebhookDeliverer(provider.url, timeout=settings.send_timeout)
    worker = Worker(deliverer, settings, burst=True)
    await asyncio.wait_for(worker.run(), timeout=30)
    assert [d.message_id for d in provider.deliveries()] == [message_id]

    spans = list(exporter.get_finished_spans())
    [send] = _one(spans, "relayq send", SpanKind.PRODUCER)
    delivers = _one(spans, "relayq deliver", SpanKind.CONSUMER)
    posts = _one(spans, "POST", SpanKind.CLIENT)
    assert len(delivers) == 2 and len(posts) == 2
    assert send.context is not None
    trace_id = send.context.trace_id
    assert {s.context.trace_id for s in [send, *delivers, *posts] if s.context} == {trace_id}

    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "relayq"
    assert send.attributes["messaging.message.id"] == message_id
    assert send.attributes["relayq.tenant"] == "acme"

    partition = keys.partition_of("acme", "c-1")
    for attempt, (deliver, post) in enumerate(zip(delivers, posts, strict=True), start=1):
        # Each attempt is a child of the send, and linked to it.
        assert deliver.parent is not None and deliver.parent.span_id == send.context.span_id
        assert [link.context.span_id for link in deliver.links] == [send.context.span_id]
        assert deliver.attributes is not None
        assert deliver.attributes["messaging.system"] == "relayq"
        assert deliver.attributes["messaging.message.id"] == message_id
        assert deliver.attributes["messaging.destination.name"] == keys.stream(
            partition, Priority.NORMAL
        )
        assert deliver.attributes["relayq.partition"] == partition
        assert deliver.attributes["relayq.tenant"] == "acme"
        assert deliver.attributes["relayq.attempt"] == attempt
        # The HTTP request is a child of its attempt.
        assert deliver.context is not None
        assert post.parent is not None and post.parent.span_id == deliver.context.span_id
        assert post.attributes is not None
        assert post.attributes["http.request.method"] == "POST"
        assert post.attributes["url.full"] == provider.url

    assert posts[0].attributes is not None and posts[1].attributes is not None
    assert posts[0].attributes["http.response.status_code"] == 503
    assert posts[0].status.status_code == StatusCode.ERROR
    assert delivers[0].status.status_code == StatusCode.ERROR
    assert posts[1].attributes["http.response.status_code"] == 200
    assert delivers[1].status.status_code != StatusCode.ERROR


async def test_no_trace_context_without_a_provider(
    settings: Settings, keys: Keys, redis_client: redis.Redis, make_provider: ProviderFactory
) -> None:
    # Without an SDK provider the producer injects no trace context, and delivery works.
    assert not tracing_enabled()
    provider = make_provider()
    async with Producer(settings) as producer:
        await producer.send(tenant="acme", conversation="c", recipient="+1", payload={})
    stream = keys.stream(keys.partition_of("acme", "c"), Priority.NORMAL)
    entries: Any = redis_client.xrange(stream)
    [(_, fields)] = entries
    assert decode_entry(fields).trace == {}
    worker = Worker(WebhookDeliverer(provider.url), settings, burst=True)
    await asyncio.wait_for(worker.run(), timeout=30)
    assert len(provider.deliveries()) == 1


async def test_both_producers_open_the_same_send_span(
    exporter: InMemorySpanExporter, settings: Settings
) -> None:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "conversation": "c-1",
        "recipient": "+1",
        "payload": {},
        "sender": "wa-1",
    }
    async with Producer(settings) as producer:
        async_id = await producer.send(**fields)
    with SyncProducer(settings) as sync_producer:
        sync_id = sync_producer.send(**fields)

    spans = _one(list(exporter.get_finished_spans()), "relayq send", SpanKind.PRODUCER)
    assert [dict(span.attributes or {}) for span in spans] == [
        {
            "messaging.system": "relayq",
            "messaging.message.id": message_id,
            "relayq.tenant": "acme",
            "relayq.conversation": "c-1",
            "relayq.sender": "wa-1",
            "relayq.direct": False,
        }
        for message_id in (async_id, sync_id)
    ]
