"""An open-loop producer: messages go out on a fixed schedule, whatever the system does.

Message ``i`` is due at ``start + i / rate``. Each time the producer wakes it sends every
message that is due (one ``send()``, or one ``send_many()`` when several are due) and
records each message's *intended* time. Latency measured from the intended time includes
any time the producer itself fell behind, so a slow system cannot hide its stalls by
slowing the load down (no coordinated omission). Runs in a child (:mod:`bench.child`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.relayq_env import relayq_settings
from bench.relayq_produce import plan
from relayq.producers import Producer, SendRequest

__all__ = ("open_loop",)

_START_DELAY_NS = 200_000_000


async def _send_due(producer: Producer, batch: list[SendRequest]) -> list[str]:
    if len(batch) == 1:
        r = batch[0]
        return [
            await producer.send(tenant=r.tenant, conversation=r.conversation,
                                recipient=r.recipient, payload=r.payload)
        ]  # fmt: skip
    results = await producer.send_many(batch)
    return [r.message_id or "" for r in results]


async def _run(
    url: str, rate: float, seconds: float, requests: list[SendRequest],
    intended: dict[str, int], env: dict[str, str] | None,
) -> dict[str, Any]:  # fmt: skip
    total = len(requests)
    interval = 1e9 / rate
    worst_lag = 0
    async with Producer(relayq_settings(url, env)) as producer:
        await producer.send_many([])  # connect and check partitions before the clock starts
        start = time.time_ns() + _START_DELAY_NS
        sent = 0
        while sent < total:
            now = time.time_ns()
            due = min(total, int((now - start) // interval) + 1) if now >= start else 0
            if due <= sent:
                await asyncio.sleep((start + sent * interval - now) / 1e9)
                continue
            ids = await _send_due(producer, requests[sent:due])
            for offset, message_id in enumerate(ids):
                intended[message_id] = start + round((sent + offset) * interval)
            worst_lag = max(worst_lag, time.time_ns() - (start + round(sent * interval)))
            sent = due
    return {"sent": total, "worst_lag_ms": worst_lag / 1e6, "seconds": seconds}


def open_loop(
    url: str,
    rate: float,
    seconds: float,
    out: str,
    tenants: int = 50,
    conversations: int = 5_000,
    env: dict[str, str] | None = None,
    prefix: str = "tenant",
) -> dict[str, Any]:
    """Send ``rate`` msgs/s for ``seconds``; write ``{message id: intended ns}`` to ``out``."""
    intended: dict[str, int] = {}
    total = max(1, round(rate * seconds))
    requests = plan(total, tenants=tenants, conversations=conversations, prefix=prefix)
    summary = asyncio.run(_run(url, rate, seconds, requests, intended, env))
    Path(out).write_bytes(msgspec.json.encode(intended))
    return summary
