"""Durable counters and outcome records written with the acknowledgement (issue 14, items
1-2): counted once per message however often its ack is sent, recorded with the worker,
the attempts and the provider's message id, and trimmed to the configured count."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis

from relayq.consumers.acknowledger import Acknowledger
from relayq.consumers.envelope import Envelope, PartitionState
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message
from relayq.streams.redis_client import create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

STREAM_LEVEL = "normal"


def _pending_envelopes(redis_client: redis.Redis, keys: Keys, count: int) -> list[Envelope]:
    stream = keys.stream(0, STREAM_LEVEL)
    redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    envelopes = []
    state = PartitionState(partition=0, token="t", lease_deadline=0.0)
    for n in range(count):
        message = Message(
            id=f"M{n:03d}",
            tenant="acme",
            conversation=f"c{n}",
            recipient="+15550100",
            priority=STREAM_LEVEL,
            payload=b"{}",
            created_ms=1,
        )
        entry_id: Any = redis_client.xadd(stream, {b"m": b"x"})
        envelopes.append(Envelope(state=state, stream=stream, entry_id=entry_id, message=message))
    redis_client.xreadgroup(GROUP, "w1", {stream: ">"})
    return envelopes


def _acknowledge(settings: Settings, keys: Keys, rounds: list[list[Envelope]]) -> None:
    async def main() -> None:
        client = create_client(settings)
        try:
            acks = Acknowledger(client, Scripts(client), keys, settings, "w1")
            for envelopes in rounds:
                for envelope in envelopes:
                    acks.ack(envelope, provider_message_id=f"prov-{envelope.message.id}")
                await acks.drain()
        finally:
            await client.aclose()

    asyncio.run(main())


def test_an_entry_acknowledged_twice_is_counted_and_recorded_once(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    envelopes = _pending_envelopes(redis_client, keys, 3)
    # The second round is a redelivery's ack after another owner acknowledged already.
    _acknowledge(settings, keys, [envelopes, envelopes[:2]])
    assert redis_client.hgetall(keys.counts(0)) == {b"delivered:normal:acme": b"3"}
    record = json.loads(redis_client.hget(keys.outcomes(0), "M001"))  # type: ignore[arg-type]
    assert record["state"] == "delivered" and record["worker"] == "w1"
    assert record["provider_message_id"] == "prov-M001" and record["attempts"] == 1
    assert record["entry_id"] == envelopes[1].entry_id.decode()


def test_delivered_records_are_trimmed_to_the_configured_count(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    settings = settings.replace(keep_delivered_count=4)
    envelopes = _pending_envelopes(redis_client, keys, 10)
    _acknowledge(settings, keys, [envelopes])
    names: Any = redis_client.hkeys(keys.outcomes(0))
    kept = sorted(name.decode() for name in names)
    assert kept == ["M006", "M007", "M008", "M009"]
    assert redis_client.zcard(keys.outcome_index(0, "delivered")) == 4
    assert redis_client.hget(keys.counts(0), "delivered:normal:acme") == b"10"


def test_no_records_when_keeping_is_off_but_the_counter_counts(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    settings = settings.replace(keep_delivered=0)
    envelopes = _pending_envelopes(redis_client, keys, 2)
    # The records the messages had while queued go too (they would stay for ever).
    for envelope in envelopes:
        redis_client.hset(keys.outcomes(0), envelope.message.id, b'{"state":"accepted"}')
    _acknowledge(settings, keys, [envelopes])
    assert redis_client.exists(keys.outcomes(0)) == 0
    assert redis_client.hget(keys.counts(0), "delivered:normal:acme") == b"2"
