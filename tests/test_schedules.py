"""Repeatable messages: an every-second schedule fires once per second however many
workers run; schedules can be listed and removed; bad schedules are refused."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
import redis

from relayq.ops.local_provider import Delivery
from relayq.producers import Producer
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, live_workers, wait_until

_MESSAGE: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "digest",
    "recipient": "+1555",
    "payload": {},
}


async def _schedule(settings: Settings, name: str, every: float) -> None:
    async with Producer(settings) as producer:
        await producer.schedule(name, every=every, **_MESSAGE)


async def _unschedule(settings: Settings, name: str) -> tuple[bool, list[str]]:
    async with Producer(settings) as producer:
        removed = await producer.unschedule(name)
        return removed, [s.name for s, _ in await producer.schedules()]


def _firing_gaps(deliveries: list[Delivery]) -> list[float]:
    created = sorted(d.created_ms for d in deliveries)
    return [(b - a) / 1000 for a, b in itertools.pairwise(created)]


def test_an_every_second_schedule_fires_once_per_second_with_three_workers(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    provider = make_provider()
    for _ in range(3):
        workers.start(provider.url)
    wait_until(lambda: len(live_workers(redis_client, keys)) == 3, timeout=20, message="3 workers")
    asyncio.run(_schedule(settings, "digest", every=1.0))
    started = time.monotonic()
    wait_until(lambda: len(provider.deliveries()) >= 6, timeout=20, message="six firings")
    elapsed = time.monotonic() - started
    removed, left = asyncio.run(_unschedule(settings, "digest"))
    assert removed and left == []
    fired = provider.deliveries()
    # Once per occurrence: about one per second, never three per second.
    assert len(fired) <= elapsed + 2, (len(fired), elapsed)
    assert len({d.message_id for d in fired}) == len(fired), "each firing is a new message"
    assert min(_firing_gaps(fired)) > 0.5, _firing_gaps(fired)
    # Removed: no more firings.
    count = len(provider.deliveries())
    time.sleep(2.5)
    assert len(provider.deliveries()) == count


async def _listing(settings: Settings) -> None:
    async with Producer(settings) as producer:
        await producer.schedule("b-hourly", cron="0 * * * *", **_MESSAGE)
        await producer.schedule("a-fast", every=30, **{**_MESSAGE, "conversation": "other"})
        await producer.schedule("a-fast", every=60, **{**_MESSAGE, "conversation": "moved"})
        listed = await producer.schedules()
        assert [s.name for s, _ in listed] == ["a-fast", "b-hourly"]
        fast, due_ms = listed[0]
        assert fast.every_ms == 60_000 and fast.template.conversation == "moved"
        assert due_ms - time.time_ns() // 1_000_000 == pytest.approx(60_000, abs=5_000)
        hourly_due = listed[1][1] // 1000
        assert hourly_due % 3600 == 0, "the next full hour (cron is in UTC)"
        assert await producer.unschedule("a-fast")
        assert not await producer.unschedule("a-fast")
        assert [s.name for s, _ in await producer.schedules()] == ["b-hourly"]


def test_schedules_are_listed_replaced_and_removed(settings: Settings) -> None:
    asyncio.run(_listing(settings))


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"every": 0.01}, "every"),
        ({"every": "soon"}, "every"),
        ({"every": 1e12}, "every"),  # no date holds its next time
        ({"cron": "0 0 30 2 *"}, "cron"),  # never occurs
        ({"cron": "every day"}, "cron"),
        ({"cron": "61 * * * *"}, "cron"),
        ({}, "schedule"),
        ({"every": 1, "cron": "* * * * *"}, "schedule"),
        ({"every": 1, "delay": 5}, "delay"),
        ({"every": 1, "tenant": ""}, "tenant"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_written(
    settings: Settings, redis_client: redis.Redis, arguments: dict[str, object], field: str
) -> None:
    async def attempt() -> None:
        async with Producer(settings) as producer:
            await producer.schedule("bad", **{**_MESSAGE, **arguments})

    with pytest.raises(ValidationError) as error:
        asyncio.run(attempt())
    assert error.value.field == field
    assert redis_client.keys("*schedules*") == []
