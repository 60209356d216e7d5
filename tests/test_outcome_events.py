"""Outcome events (issue 14, item 3): a consumer of ``events()`` sees one event per
delivered and per dead-lettered message, resumes from its cursor after a restart without
missing or repeating one, follows new events as they happen; events can be switched off;
bad cursors are refused naming the cursor."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
import redis

from relayq import OutcomeEvent, Producer, SyncProducer, ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, dead_letters, delivered_ids, run_cli, wait_until


def _send(settings: Settings, tenant: str, count: int, recipient: str) -> list[str]:
    with SyncProducer(settings) as producer:
        return [
            producer.send(
                tenant=tenant, conversation=f"{tenant}-{n % 3}", recipient=recipient, payload={}
            )
            for n in range(count)
        ]


def _all_events(settings: Settings, after: str = "start") -> list[OutcomeEvent]:
    with SyncProducer(settings) as producer:
        return list(producer.events(after=after, follow=False))


def _finished(events: list[OutcomeEvent]) -> Counter[str]:
    return Counter(e.state for e in events if e.state in ("delivered", "dead_lettered"))


def test_one_event_per_delivered_and_dead_lettered_message_and_resume_from_a_cursor(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    provider = make_provider()
    workers.start(provider.url, settings=settings)
    good = _send(settings, "acme", 20, "+15550100")
    bad = _send(settings, "bolt", 3, "reject-1")
    wait_until(lambda: len(delivered_ids(provider)) == 20, timeout=30, message="delivered")
    wait_until(lambda: len(dead_letters(redis_client, keys)) == 3, timeout=30, message="DLQ")

    events = _all_events(settings)
    assert _finished(events) == {"delivered": 20, "dead_lettered": 3}
    by_state = {e.message_id: e.state for e in events}
    assert {i for i, s in by_state.items() if s == "delivered"} == set(good)
    assert {i for i, s in by_state.items() if s == "dead_lettered"} == set(bad)
    delivered = next(e for e in events if e.state == "delivered")
    assert delivered.record.tenant == "acme" and delivered.record.worker
    dead = next(e for e in events if e.state == "dead_lettered")
    assert dead.record.kind == "permanent" and "400" in (dead.record.error or "")

    # A consumer that handled 10 events and stopped resumes from its cursor: it sees the
    # 13 it had not handled and the 10 that happened meanwhile, none twice.
    cursor = events[9].cursor
    later = _send(settings, "acme", 10, "+15550100")
    wait_until(lambda: len(delivered_ids(provider)) == 30, timeout=30, message="more")
    resumed = _all_events(settings, after=cursor)
    seen = [e.message_id for e in events[:10]] + [e.message_id for e in resumed]
    assert Counter(seen) == Counter(good + bad + later)


def test_a_follower_sees_new_events_as_they_happen(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    provider = make_provider()
    workers.start(provider.url, settings=settings)

    async def follow(expected: int) -> list[OutcomeEvent]:
        seen: list[OutcomeEvent] = []
        async with Producer(settings) as producer:
            async for event in producer.events(block=0.2):  # from now on
                seen.append(event)
                if len(seen) == expected:
                    return seen
        return seen

    async def scenario() -> tuple[list[OutcomeEvent], list[str]]:
        follower = asyncio.create_task(follow(5))
        await asyncio.sleep(0.5)  # the follower has taken its starting point
        ids = await asyncio.to_thread(_send, settings, "acme", 5, "+15550100")
        return await asyncio.wait_for(follower, timeout=30), ids

    seen, ids = asyncio.run(scenario())
    assert sorted(e.message_id for e in seen) == sorted(ids)
    assert {e.state for e in seen} == {"delivered"}


def test_retrying_events_carry_the_error_and_the_next_attempt(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    settings = settings.replace(backoff_base=600.0, backoff_max=600.0)
    provider = make_provider()
    workers.start(provider.url, settings=settings)
    [message_id] = _send(settings, "acme", 1, "down-1")

    def retried() -> list[OutcomeEvent]:
        return [e for e in _all_events(settings) if e.state == "retrying"]

    wait_until(lambda: len(retried()) == 1, timeout=30, message="retrying event")
    [event] = retried()
    assert event.message_id == message_id
    assert event.record.attempts == 1 and "500" in (event.record.error or "")
    assert (event.record.next_attempt_ms or 0) > event.record.at_ms + 60_000


def test_events_switched_off_leave_no_event_streams(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(events_keep=0)
    provider = make_provider()
    workers.start(provider.url, settings=settings)
    _send(settings, "acme", 5, "+15550100")
    wait_until(lambda: len(delivered_ids(provider)) == 5, timeout=30, message="delivered")
    assert not any(redis_client.exists(keys.events(p)) for p in range(keys.partitions))
    assert _all_events(settings) == []


def test_a_bad_cursor_is_refused_naming_it(settings: Settings) -> None:
    with SyncProducer(settings) as producer, pytest.raises(ValidationError, match="cursor"):
        list(producer.events(after="v1:1-0", follow=False))  # 8 partitions, not 1
    done = run_cli(settings, "events", "--after", "banana")
    assert done.returncode == 2 and "cursor" in done.stderr and "Traceback" not in done.stderr


def test_events_command_prints_json_lines_and_resumes(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    provider = make_provider()
    workers.start(provider.url, settings=settings)
    ids = _send(settings, "acme", 6, "+15550100")
    wait_until(lambda: len(delivered_ids(provider)) == 6, timeout=30, message="delivered")
    first = run_cli(settings, "events", "--json", "--limit", "2")
    assert first.returncode == 0, first.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 2
    rest = run_cli(settings, "events", "--json", "--after", lines[-1]["cursor"])
    more = [json.loads(line) for line in rest.stdout.splitlines()]
    assert sorted(e["message_id"] for e in lines + more) == sorted(ids)
    table = run_cli(settings, "events")
    assert table.returncode == 0 and all(i in table.stdout for i in ids)
