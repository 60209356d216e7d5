"""relayq's producer side, run in child processes (:mod:`bench.child`): backlogs and send rates.

Every message is a ~200-byte payload (:mod:`bench.payloads`); conversation ``c`` of a plan
belongs to tenant ``c % tenants``, and message ``i`` to conversation ``i % conversations``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import Any

from redis.asyncio import Redis

from bench.payloads import payload
from bench.relayq_env import relayq_settings
from bench.stats import percentiles
from relayq.producers import Producer, SendRequest

__all__ = (
    "Backlog",
    "burst",
    "conversation_name",
    "fill",
    "fill_tenants",
    "plan",
    "raw_fill",
    "send_many_rate",
    "send_single",
)

_FRACTIONS = (0.5, 0.99, 0.999)


def plan(
    n: int,
    *,
    tenants: int = 50,
    conversations: int = 5_000,
    offset: int = 0,
    dedup: bool = False,
    prefix: str = "tenant",
) -> list[SendRequest]:
    """``n`` requests spread round-robin over ``conversations`` of ``tenants`` named
    ``<prefix>-NNNN`` (each with a dedup key when ``dedup``)."""
    requests = []
    for i in range(offset, offset + n):
        c = i % conversations
        requests.append(
            SendRequest(
                tenant=f"{prefix}-{c % tenants:04d}",
                conversation=f"conv-{c:06d}",
                recipient=f"+1555{c:07d}",
                payload=payload(i),
                dedup_key=f"bench-{i}" if dedup else None,
            )
        )
    return requests


async def _send_many(producer: Producer, requests: list[SendRequest], batch: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(requests), batch):
        for result in await producer.send_many(requests[start : start + batch]):
            if result.message_id is None:
                raise RuntimeError(f"send failed: {result.error}")
            ids.append(result.message_id)
    return ids


def fill(
    url: str,
    n: int,
    tenants: int = 50,
    conversations: int = 5_000,
    batch: int = 500,
    env: dict[str, str] | None = None,
    ids: bool = True,
    dedup: bool = False,
    prefix: str = "tenant",
) -> dict[str, Any]:
    """Enqueue a backlog with ``send_many``: returns the count, seconds and (with ``ids``)
    the message ids, for the delivery checks."""

    async def main() -> dict[str, Any]:
        requests = plan(n, tenants=tenants, conversations=conversations, dedup=dedup,
                        prefix=prefix)  # fmt: skip
        async with Producer(relayq_settings(url, env)) as producer:
            started = time.perf_counter()
            sent = await _send_many(producer, requests, batch)
            seconds = time.perf_counter() - started
        return {
            "n": len(sent),
            "seconds": seconds,
            "ids": sent if ids else [],
        }

    return asyncio.run(main())


Backlog = tuple[str, int, int]
"""One tenant's backlog for :func:`fill_tenants`: (tenant, messages, conversations)."""


def conversation_name(tenant: str, index: int) -> str:
    """Conversation ``index`` of ``tenant`` in a :func:`fill_tenants` backlog."""
    return f"{tenant}-c{index:06d}"


def _tenant_requests(backlogs: Sequence[Backlog]) -> Iterator[SendRequest]:
    """Each backlog in turn (the first tenant's all queued before the next one's), message
    ``i`` of a tenant in its conversation ``i % conversations``; built as they are sent, so
    a million requests never sit in memory at once."""
    seq = 0
    for tenant, count, conversations in backlogs:
        for i in range(count):
            c = i % conversations
            yield SendRequest(tenant=tenant, conversation=conversation_name(tenant, c),
                              recipient=f"+1555{c:07d}", payload=payload(seq))  # fmt: skip
            seq += 1


def fill_tenants(
    url: str,
    backlogs: Sequence[Sequence[Any]],
    batch: int = 500,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Enqueue each ``(tenant, messages, conversations)`` backlog in order with ``send_many``
    (batches of ``batch``): returns the count and seconds."""
    plans = [(str(t), int(n), int(c)) for t, n, c in backlogs]

    async def main() -> dict[str, Any]:
        sent = 0
        async with Producer(relayq_settings(url, env)) as producer:
            started = time.perf_counter()
            chunk: list[SendRequest] = []
            for request in _tenant_requests(plans):
                chunk.append(request)
                if len(chunk) == batch:
                    sent += len(await _send_many(producer, chunk, batch))
                    chunk = []
            sent += len(await _send_many(producer, chunk, batch))
            seconds = time.perf_counter() - started
        return {"n": sent, "seconds": seconds}

    return asyncio.run(main())


def burst(
    url: str,
    n: int,
    tenants: int,
    conversations: int,
    tasks: int = 100,
    env: dict[str, str] | None = None,
    prefix: str = "tenant",
) -> dict[str, Any]:
    """``n`` concurrent ``send()`` calls, ``tasks`` at a time; each conversation is sent by
    one task, in order (so its order is defined). Returns seconds and the ids."""

    async def main() -> dict[str, Any]:
        requests = plan(n, tenants=tenants, conversations=conversations, prefix=prefix)
        lanes: list[list[SendRequest]] = [[] for _ in range(tasks)]
        for i, request in enumerate(requests):
            lanes[(i % conversations) % tasks].append(request)
        ids: list[str] = []
        async with Producer(relayq_settings(url, env)) as producer:
            await producer.send_many([])

            async def lane(items: list[SendRequest]) -> None:
                for r in items:
                    ids.append(await producer.send(**_fields(r)))

            started = time.perf_counter()
            await asyncio.gather(*(lane(items) for items in lanes))
            seconds = time.perf_counter() - started
        return {"n": len(ids), "seconds": seconds, "ids": ids}

    return asyncio.run(main())


def raw_fill(url: str, n: int, value_hex: str, batch: int = 1_000) -> dict[str, Any]:
    """XADD ``n`` entries ``{"p": value}`` into one stream, pipelined (memory baseline)."""
    value = bytes.fromhex(value_hex)

    async def main() -> dict[str, Any]:
        client = Redis.from_url(url)
        try:
            for start in range(0, n, batch):
                pipe = client.pipeline(transaction=False)
                for _ in range(min(batch, n - start)):
                    pipe.xadd("bench:raw", {"p": value})
                await pipe.execute()
        finally:
            await client.aclose()
        return {"n": n}

    return asyncio.run(main())


def send_many_rate(url: str, n: int, batch: int = 500) -> dict[str, Any]:
    """``send_many`` in batches of ``batch``: messages per second over ``n``."""

    async def main() -> dict[str, Any]:
        requests = plan(n)
        async with Producer(relayq_settings(url)) as producer:
            await _send_many(producer, requests[:batch], batch)  # connect, check partitions
            started = time.perf_counter()
            await _send_many(producer, requests, batch)
            seconds = time.perf_counter() - started
        return {"n": n, "seconds": seconds, "rate": n / seconds}

    return asyncio.run(main())


def send_single(url: str, n: int) -> dict[str, Any]:
    """``send()`` one at a time, each awaited: per-call latency percentiles and the rate."""

    async def main() -> dict[str, Any]:
        requests = plan(n)
        latencies: list[float] = []
        async with Producer(relayq_settings(url)) as producer:
            for request in requests[:100]:  # warm up: connection, partition check
                await producer.send(**_fields(request))
            clock = time.perf_counter_ns
            started = clock()
            for request in requests:
                fields = _fields(request)
                before = clock()
                await producer.send(**fields)
                latencies.append((clock() - before) / 1e6)
            seconds = (clock() - started) / 1e9
        p50, p99, p999 = percentiles(latencies, _FRACTIONS)
        return {"n": n, "rate": n / seconds, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999}

    return asyncio.run(main())


def _fields(request: SendRequest) -> dict[str, Any]:
    return {
        "tenant": request.tenant,
        "conversation": request.conversation,
        "recipient": request.recipient,
        "payload": request.payload,
    }
