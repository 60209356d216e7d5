"""The last hour of throughput and failures, kept in Redis with bounded memory, for the
dashboard's charts.

Once a minute every ``relayq api`` process samples the durable counters (``{ns:P}:counts``:
delivered and dead-lettered so far, per level and tenant; one pipelined HGETALL per
partition) and appends one point to the stream ``<ns>:history``:

- entry id ``<minute start ms>-0``: a second process sampling the same minute gets Redis's
  "ID equal or smaller" error and writes nothing, so any number of API processes write one
  point a minute, with no lock;
- one field ``p``: JSON ``{"delivered": {"*": total, "<tenant>": total, ...},
  "dead_lettered": {...}}`` with the ``TOP_TENANTS`` tenants of most messages (the rest
  count in ``*`` only, so a namespace of a million tenants still writes a small point);
- ``XADD MAXLEN = POINTS``: an hour and one point, whatever runs.

Nothing is written while nothing has finished in the namespace (no counter exists yet).
A chart is the differences of consecutive points: messages finished per minute, and the
share of them dead-lettered. With no API process running no point is written; the chart
shows the gap as it is (the difference across it is spread over the minutes it spans).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import msgspec
import redis.exceptions
import structlog
from redis.asyncio import Redis

from relayq.streams.keys import Keys
from relayq.streams.outcome import parse_counter_field

__all__ = (
    "POINTS",
    "TOP_TENANTS",
    "MinutePoint",
    "history_key",
    "read_history",
    "run_sampler",
    "sample_once",
)

POINTS = 61
TOP_TENANTS = 50
_MINUTE_MS = 60_000
_STATES = ("delivered", "dead_lettered")
_ALL = "*"
_LIVE_AFTER_MS = 10_000
"""The running minute is shown once this much of it has passed."""

_logger = structlog.get_logger("relayq.dashboard.history")


class MinutePoint(msgspec.Struct, frozen=True):
    """Messages finished in the minute ending at ``minute_ms`` (per minute, averaged over
    a gap), and the share of them dead-lettered (0 to 1)."""

    minute_ms: int
    delivered: float
    dead_lettered: float

    @property
    def failure_rate(self) -> float:
        finished = self.delivered + self.dead_lettered
        return self.dead_lettered / finished if finished else 0.0


def history_key(keys: Keys) -> str:
    return keys.history


async def _totals(client: Redis, keys: Keys) -> dict[str, Counter[str]]:
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(keys.partitions):
            pipe.hgetall(keys.counts(partition))
        replies: list[dict[bytes, bytes]] = await pipe.execute()
    totals: dict[str, Counter[str]] = {state: Counter() for state in _STATES}
    for counters in replies:
        for field, value in counters.items():
            state, _level, tenant = parse_counter_field(field.decode())
            if state in totals:
                totals[state][tenant] += int(value)
    return totals


def _point(totals: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    """The totals with the ``TOP_TENANTS`` busiest tenants named and everything in ``*``."""
    busiest = Counter[str]()
    for counts in totals.values():
        busiest.update(counts)
    named = [tenant for tenant, _ in busiest.most_common(TOP_TENANTS)]
    return {
        state: {_ALL: sum(counts.values()), **{t: counts[t] for t in named if t in counts}}
        for state, counts in totals.items()
    }


async def sample_once(client: Redis, keys: Keys, now_ms: int | None = None) -> bool:
    """Append this minute's point; False when a point of this minute is there already, or
    when nothing has finished in the namespace yet (a fresh namespace stays untouched)."""
    minute = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) // _MINUTE_MS
    totals = await _totals(client, keys)
    if not any(totals.values()):
        return False
    point = msgspec.json.encode(_point(totals))
    try:
        await client.xadd(
            history_key(keys), {"p": point}, id=f"{minute * _MINUTE_MS}-0",
            maxlen=POINTS, approximate=False,
        )  # fmt: skip
    except redis.exceptions.ResponseError as exc:
        if "equal or smaller" in str(exc):
            return False
        raise
    return True


async def run_sampler(client: Redis, keys: Keys) -> None:
    """Sample now, then at the start of every minute, until cancelled (an error is logged
    and the next minute tried again: charts are not worth stopping the API for)."""
    while True:
        try:
            await sample_once(client, keys)
        except (redis.exceptions.RedisError, OSError) as exc:
            _logger.warning("history_sample_failed", error=type(exc).__name__)
        now_ms = time.time_ns() // 1_000_000
        await asyncio.sleep((_MINUTE_MS - now_ms % _MINUTE_MS) / 1000 + 0.05)


def _total_of(point: dict[str, dict[str, int]], state: str, tenant: str | None) -> int | None:
    """A point's total of ``state`` (of ``tenant``, else of all); None when the point does
    not know it (the tenant was not among the busiest that minute)."""
    counts = point.get(state, {})
    if tenant is None:
        return counts.get(_ALL)
    if tenant in counts:
        return counts[tenant]
    every_tenant_named = len(counts) - 1 < TOP_TENANTS
    return 0 if every_tenant_named else None


def _points(
    rows: list[tuple[int, dict[str, dict[str, int]]]], tenant: str | None
) -> list[MinutePoint]:
    previous: tuple[int, int, int] | None = None
    points: list[MinutePoint] = []
    for at_ms, point in rows:
        delivered = _total_of(point, "delivered", tenant)
        dead = _total_of(point, "dead_lettered", tenant)
        if delivered is None or dead is None:
            previous = None
            continue
        if previous is not None:
            minutes = max(at_ms - previous[0], 1) / _MINUTE_MS
            points.append(
                MinutePoint(
                    minute_ms=at_ms,
                    delivered=round(max(0, delivered - previous[1]) / minutes, 1),
                    dead_lettered=round(max(0, dead - previous[2]) / minutes, 1),
                )
            )
        previous = (at_ms, delivered, dead)
    return points


async def read_history(
    client: Redis,
    keys: Keys,
    tenant: str | None = None,
    current: dict[str, Counter[str]] | None = None,
    now_ms: int | None = None,
) -> list[MinutePoint]:
    """The per-minute points of the last hour, oldest first, and the minute running now
    (from ``current``, the delivered and dead-lettered totals per tenant a caller read
    already, else from the counters): of one ``tenant``, while it is among the busiest,
    else of every tenant. (A tenant key's ``current`` holds its own tenant only: its
    ``*`` total is then its own, which is the one its chart reads.)"""
    now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    entries: Any = await client.xrange(history_key(keys), min=now_ms - POINTS * _MINUTE_MS)
    rows = [
        (int(entry_id.decode().partition("-")[0]), msgspec.json.decode(fields[b"p"]))
        for entry_id, fields in entries
    ]
    if rows and now_ms - rows[-1][0] >= _LIVE_AFTER_MS:
        totals = current if current is not None else await _totals(client, keys)
        rows.append((now_ms, _point(totals)))
    return _points(rows, tenant)
