"""``relayq clean`` deletes finished outcome records and dead letters older than a cutoff,
with exact counts; ``relayq trim`` deletes acknowledged entries and never goes past the
oldest pending or unread entry. Both idempotent and logged."""

from __future__ import annotations

from typing import Any

import redis

from relayq.streams.keys import GROUP, Keys
from relayq.streams.outcome import OutcomeState
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, dead_letters, delivered_ids, wait_until
from tests.test_repair_support import cli_json, repair_log, send


def _finished_records(client: redis.Redis, keys: Keys, state: str) -> int:
    return sum(int(client.zcard(keys.outcome_index(p, state))) for p in range(keys.partitions))


def test_clean_deletes_what_is_older_than_the_cutoff(
    settings: Settings, keys: Keys, redis_client: redis.Redis, make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:  # fmt: skip
    provider = make_provider()
    workers.start(provider.url)
    send(settings, "A", 5)
    send(settings, "D", 2, recipient="reject-1")
    wait_until(lambda: len(delivered_ids(provider)) == 5, timeout=30, message="delivered")
    wait_until(lambda: len(dead_letters(redis_client, keys)) == 2, timeout=30, message="dlq")
    wait_until(
        lambda: _finished_records(redis_client, keys, OutcomeState.DELIVERED) == 5,
        timeout=10,
        message="delivered records",
    )

    nothing = cli_json(settings, "clean", "--older-than", "1h")
    assert (nothing["delivered_records"], nothing["dead_lettered_records"]) == (0, 0)
    assert nothing["dead_letter_entries"] == 0

    delivered = cli_json(settings, "clean", "--older-than", "0s", "--delivered")
    assert delivered["delivered_records"] == 5 and delivered["dead_letter_entries"] == 0
    assert _finished_records(redis_client, keys, OutcomeState.DELIVERED) == 0
    assert len(dead_letters(redis_client, keys)) == 2

    dead = cli_json(settings, "clean", "--older-than", "0s", "--dead-lettered")
    assert (dead["dead_lettered_records"], dead["dead_letter_entries"]) == (2, 2)
    assert dead_letters(redis_client, keys) == []
    states = [
        b'"state":"delivered"' in blob or b'"state":"dead_lettered"' in blob
        for p in range(keys.partitions)
        for blob in redis_client.hvals(keys.outcomes(p))
    ]
    assert not any(states)

    again = cli_json(settings, "clean", "--older-than", "0s")
    assert again["delivered_records"] + again["dead_lettered_records"] == 0
    assert again["dead_letter_entries"] == 0
    logged = [(e["action"], e["count"]) for e in repair_log(redis_client, keys)]
    assert logged == [("clean", "0"), ("clean", "5"), ("clean", "4"), ("clean", "0")]


def _ids(client: redis.Redis, stream: str) -> list[bytes]:
    entries: Any = client.xrange(stream)
    return [entry_id for entry_id, _ in entries]


def test_trim_never_passes_the_oldest_pending_or_unread_entry(
    settings: Settings, redis_client: redis.Redis
) -> None:
    settings = settings.replace(partitions=1)
    keys = Keys.from_settings(settings)
    stream = keys.stream(0, "normal")
    send(settings, "T", 10, conversation="t")
    ids = _ids(redis_client, stream)
    assert len(ids) == 10
    # A consumer reads six, acknowledges the 1st, 2nd and 4th: 3rd, 5th, 6th pending,
    # 7th to 10th unread.
    redis_client.xgroup_create(stream, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"}, count=6)
    redis_client.xack(stream, GROUP, ids[0], ids[1], ids[3])

    first = cli_json(settings, "trim")
    assert first["streams"] == [{"partition": 0, "priority": "normal", "trimmed": 2}]
    assert _ids(redis_client, stream) == ids[2:]
    pending: Any = redis_client.xpending(stream, GROUP)
    assert pending["min"] == ids[2] and pending["pending"] == 3

    redis_client.xack(stream, GROUP, ids[2], ids[4], ids[5])
    second = cli_json(settings, "trim")
    assert second["streams"] == [{"partition": 0, "priority": "normal", "trimmed": 4}]
    assert _ids(redis_client, stream) == ids[6:]  # the unread four stay
    group: Any = redis_client.xinfo_groups(stream)[0]
    assert group["last-delivered-id"] == ids[5] and group["pending"] == 0

    assert cli_json(settings, "trim")["streams"] == []
    logged = [(e["action"], e["count"]) for e in repair_log(redis_client, keys)]
    assert logged == [("trim", "2"), ("trim", "4"), ("trim", "0")]
