"""The dashboard's last hour (``ops.dashboard_history``): one point a minute however many
API processes sample, at most an hour of points, per-minute rates from the counters, a
tenant's own series while it is among the busiest, and the charts drawn from them."""

from __future__ import annotations

import asyncio

import redis

from relayq.ops.dashboard_charts import line_chart
from relayq.ops.dashboard_history import POINTS, history_key, read_history, sample_once
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings

_MINUTE = 60_000
_T0 = 1_700_000_040_000  # a minute's start


def _count(client: redis.Redis, keys: Keys, tenant: str, delivered: int, dead: int) -> None:
    """Add to the durable counters as workers do (``{ns:P}:counts``)."""
    counts = keys.counts(keys.partition_of(tenant, "c"))
    client.hincrby(counts, f"delivered:normal:{tenant}", delivered)
    client.hincrby(counts, f"dead_lettered:normal:{tenant}", dead)


def test_points_once_a_minute_bounded_and_rates_per_minute(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        client = create_client(settings)
        try:
            assert not await sample_once(client, keys, _T0)  # nothing finished yet
            assert redis_client.dbsize() == 0
            _count(redis_client, keys, "acme", 10, 0)
            assert await sample_once(client, keys, _T0)
            # A second API process in the same minute writes nothing.
            assert not await sample_once(client, keys, _T0 + 30_000)
            _count(redis_client, keys, "acme", 60, 0)
            _count(redis_client, keys, "bolt", 30, 10)
            assert await sample_once(client, keys, _T0 + _MINUTE)
            _count(redis_client, keys, "acme", 120, 0)  # over the two minutes of a gap
            assert await sample_once(client, keys, _T0 + 3 * _MINUTE)

            every = await read_history(client, keys, now_ms=_T0 + 3 * _MINUTE + 1)
            assert [(p.delivered, p.dead_lettered) for p in every] == [(90, 10), (60, 0)]
            assert every[0].failure_rate == 0.1
            bolt = await read_history(client, keys, "bolt", now_ms=_T0 + 3 * _MINUTE + 1)
            assert [(p.delivered, p.dead_lettered) for p in bolt] == [(30, 10), (0, 0)]

            for minute in range(4, 4 + 2 * POINTS):
                await sample_once(client, keys, _T0 + minute * _MINUTE)
            assert redis_client.xlen(history_key(keys)) == POINTS
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_charts_are_svg_of_numbers_only() -> None:
    chart = str(line_chart("Finished per minute", [1, 5, 3], "msg"))
    assert chart.startswith("<svg") and "<polyline" in chart and "max 5 msg" in chart
    assert "<script" not in str(line_chart("<script>", [], "<b>"))
