"""What the dashboard's pages show, read through the HTTP API's own handlers (so a page
shows exactly what ``/v1/...`` answers the same key) plus the few reads the API has no
route for: live workers with their partitions, a message's body, the charts' history."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from relayq.consumers.membership import assignment
from relayq.ops.api_context import ApiContext
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.api_models import StatsOut
from relayq.ops.dashboard_charts import line_chart
from relayq.ops.dashboard_history import read_history
from relayq.ops.dead_letter_inspection import format_ref, read_dead_letter
from relayq.ops.live_workers import redis_now_ms
from relayq.ops.message_lookup import MessageStatus
from relayq.ops.pending_entries import PendingFilter, read_pending
from relayq.streams.codec import readable_message
from relayq.streams.message import Message

__all__ = (
    "TENANT_COLUMNS",
    "WorkerRow",
    "busiest_rows",
    "charts",
    "levels_of",
    "message_body",
    "sorted_rows",
    "trace_id",
    "worker_rows",
)

TENANT_COLUMNS = (
    "tenant", "priority", "waiting", "in_flight", "retrying", "delayed", "delivered",
    "dead_lettered", "oldest_waiting_ms",
)  # fmt: skip
"""The per-tenant table's columns, each a sort key of ``sorted_rows``."""


class WorkerRow(msgspec.Struct, kw_only=True):
    worker: str
    partitions: list[int]
    """The partitions it should own now (every worker computes the same assignment)."""
    in_flight: int
    """Entries it read and has not acknowledged (XPENDING per consumer)."""
    heartbeat_ms_left: int
    """Until its heartbeat runs out unless renewed (it renews every tick)."""


def levels_of(stats: StatsOut) -> list[dict[str, Any]]:
    """Per priority level: the counts, and the oldest waiting message's creation time."""
    oldest: dict[str, int] = {}
    for row in stats.rows:
        created = row.get("oldest_waiting_ms")
        if created is not None:
            level = row["priority"]
            oldest[level] = min(created, oldest.get(level, created))
    return [
        {"priority": level, **counts, "oldest_waiting_ms": oldest.get(level)}
        for level, counts in stats.priorities.items()
    ]


def _busy(row: dict[str, Any]) -> tuple[int, int, int]:
    unfinished = row["waiting"] + row["in_flight"] + row["retrying"] + row["delayed"]
    return unfinished, row["dead_lettered"], row["delivered"]


def busiest_rows(stats: StatsOut, n: int) -> list[dict[str, Any]]:
    """The ``n`` per-tenant rows with most unfinished messages (then most dead-lettered,
    then most delivered): what the overview shows of a namespace of many tenants."""
    return sorted(stats.rows, key=_busy, reverse=True)[:n]


def sorted_rows(stats: StatsOut, column: str, descending: bool) -> list[dict[str, Any]]:
    """Every per-tenant row sorted by ``column`` (rows without a value last either way),
    then by tenant and priority; ValueError for a column the table does not have."""
    if column not in TENANT_COLUMNS:
        raise ValueError(f"cannot sort by {column[:40]!r}: one of {', '.join(TENANT_COLUMNS)}")
    rows = sorted(stats.rows, key=lambda row: (row["tenant"], row["priority"]))
    known = [row for row in rows if row[column] is not None]
    unknown = [row for row in rows if row[column] is None]
    return sorted(known, key=lambda row: row[column], reverse=descending) + unknown


async def worker_rows(context: ApiContext) -> list[WorkerRow]:
    """The live workers (heartbeat not expired by Redis's clock), busiest first."""
    now_ms = await redis_now_ms(context.client)
    beats: list[tuple[bytes, float]] = await context.client.zrangebyscore(
        context.keys.workers, f"({now_ms}", "+inf", withscores=True
    )  # type: ignore[assignment]
    live = {member.decode(): int(score) for member, score in beats}
    owners = assignment(live, context.keys.partitions)
    report = await read_pending(context.client, context.keys, PendingFilter(limit=1))
    pending = {row.consumer: row.pending for row in report.consumers}
    rows = [
        WorkerRow(
            worker=worker,
            partitions=sorted(p for p, owner in owners.items() if owner == worker),
            in_flight=pending.get(worker, 0),
            heartbeat_ms_left=expiry - now_ms,
        )
        for worker, expiry in live.items()
    ]
    return sorted(rows, key=lambda row: (-row.in_flight, row.worker))


def _finished_now(stats: StatsOut) -> dict[str, Counter[str]]:
    """Delivered and dead-lettered totals per tenant, from counts already read."""
    totals: dict[str, Counter[str]] = {"delivered": Counter(), "dead_lettered": Counter()}
    for row in stats.rows:
        for state, counts in totals.items():
            counts[row["tenant"]] += row[state]
    return totals


async def charts(context: ApiContext, principal: ApiPrincipal, stats: StatsOut) -> list[Any]:
    """The last hour's throughput and failure-rate charts (of the key's tenant, for a
    tenant key); the minute running now comes from ``stats`` (counts the page read)."""
    tenant = principal.tenant if principal.role == "tenant" else None
    points = await read_history(context.client, context.keys, tenant, _finished_now(stats))
    return [
        line_chart("Finished per minute", [p.delivered + p.dead_lettered for p in points], "msg"),
        line_chart("Dead-lettered share", [round(100 * p.failure_rate, 1) for p in points], "%"),
    ]


async def message_body(context: ApiContext, status: MessageStatus) -> Message | None:
    """The message itself where relayq still holds it: its dead letter, or the stream
    entry a worker holds (a finished message's body is not kept: only its record)."""
    record = status.record
    if record.dlq_id:
        letter = await read_dead_letter(
            context.client, context.keys, format_ref(status.partition, record.dlq_id)
        )
        if letter is not None and letter.message is not None:
            return letter.message
    if record.entry_id and record.state == "in_flight":
        stream = context.keys.stream(status.partition, record.priority)
        found: Any = await context.client.xrange(stream, record.entry_id, record.entry_id)
        if found:
            return readable_message(found[0][1])
    return None


def trace_id(message: Message | None) -> str | None:
    """The W3C trace id the producer put in the message (``traceparent``'s second part)."""
    parent = message.trace.get("traceparent", "") if message is not None else ""
    parts = parent.split("-")
    return parts[1] if len(parts) == 4 else None
