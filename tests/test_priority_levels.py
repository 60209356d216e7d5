"""Configurable priority levels (``RELAYQ_PRIORITIES``): names, numbers, served strictly in
the configured order by a real worker, fixed per namespace once used, and bad levels
refused by name at every entry point (settings, send, CLI, stream entries)."""

from __future__ import annotations

import pytest
import redis

from relayq.ops.controls import Controls
from relayq.producers import SyncProducer
from relayq.streams.codec import ENTRY_FIELD, encode_message
from relayq.streams.errors import ConfigurationError, ValidationError
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.priority_levels import PriorityLevels
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    dead_letters,
    delivered_ids,
    merged_deliveries,
    pending_total,
    run_cli,
    wait_until,
)

SEED_000 = "otp=10,notification=5,group=3,bulk=1"
"""Seed 000's four queues, highest first."""


# -- the levels themselves --------------------------------------------------------------


def test_levels_parse_in_order_and_resolve_names_and_numbers() -> None:
    levels = PriorityLevels.parse(" otp = 10, notification=5 ,group=3,bulk=1")
    assert levels.names == ("otp", "notification", "group", "bulk")
    assert str(levels) == SEED_000
    assert levels.resolve("group") == "group"
    assert levels.resolve(10) == "otp"
    assert levels.resolve("1") == "bulk"  # digits, as a command line gives them
    assert levels.default == "bulk"  # no "normal": the lowest level
    assert PriorityLevels.parse("high,normal,low").default == "normal"
    bull = PriorityLevels.parse("urgent=1,normal=5,later=10")  # Bull's numbers: 1 first
    assert bull.names[0] == bull.resolve(1) == "urgent"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "name ''"),
        ("high,,low", "name ''"),
        ("High", "lowercase letter"),
        ("a:b", "lowercase letter"),
        ("1st", "lowercase letter"),
        ("otp=10,bulk", "every level a number"),
        ("otp=ten", "whole number"),
        ("otp=99999999", "whole number"),
        ("a=1,b=1", "same number"),
        ("otp,dlq", "'dlq' is reserved"),
        ("a,b,a", "names a level twice"),
        (",".join(f"l{i}" for i in range(17)), "1 to 16"),
    ],
)
def test_bad_levels_are_refused_saying_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        PriorityLevels.parse(text)


@pytest.mark.parametrize("bad", ["urgent", 7, True, 2.5, None, "HIGH", ""])
def test_resolve_refuses_what_is_not_a_level(bad: object) -> None:
    levels = PriorityLevels.parse(SEED_000)
    with pytest.raises(ValidationError) as raised:
        levels.resolve(bad)
    assert raised.value.field == "priority"


def test_a_bad_relayq_priorities_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"RELAYQ_PRIORITIES='otp=10,bulk'"):
        Settings.from_env({"RELAYQ_PRIORITIES": "otp=10,bulk"})


# -- served in order by a real worker ---------------------------------------------------


def test_four_configured_levels_are_delivered_strictly_in_order(
    settings: Settings,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(priorities=SEED_000, partitions=4, concurrency=1)
    keys = Keys.from_settings(settings)
    provider = make_provider()
    level_of: dict[str, str] = {}
    with SyncProducer(settings) as producer:
        # Lowest level first, so arrival order alone would deliver them backwards; every
        # other message names its level by number.
        for rank, level in enumerate(reversed(keys.levels.levels)):
            for n in range(24):
                message_id = producer.send(
                    tenant=f"t{n % 3}",
                    conversation=f"{level.name}-{n % 4}",
                    recipient="+15550100",
                    payload={"n": n, "rank": rank},
                    priority=level.number if n % 2 else level.name,
                )
                level_of[message_id] = level.name
    total = len(level_of)
    assert redis_client.hget(keys.meta, "priorities") == SEED_000.encode()
    assert {keys.priority_of_stream(s) for p in range(4) for s in keys.streams(p)} == set(
        keys.levels.names
    )
    # Held paused until every entry is in the worker's memory, so what is served first is
    # decided by the levels alone and not by which partition was read first.
    controls = Controls(redis_client, keys)
    controls.pause()
    workers.start(provider.url, settings=settings)
    wait_until(lambda: pending_total(redis_client, keys) == total, timeout=30, message="all read")
    controls.resume()
    wait_until(lambda: len(delivered_ids(provider)) == total, timeout=30, message="all delivered")

    served = [level_of[d.message_id] for d in merged_deliveries(provider)]
    rank_of = {name: i for i, name in enumerate(keys.levels.names)}
    assert [rank_of[name] for name in served] == sorted(rank_of[name] for name in served)
    assert served[0] == "otp" and served[-1] == "bulk"


def test_delayed_messages_are_promoted_into_their_configured_level(
    settings: Settings,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(priorities=SEED_000)
    keys = Keys.from_settings(settings)
    provider = make_provider()
    with SyncProducer(settings) as producer:
        sent = {
            producer.send(
                tenant="acme",
                conversation=f"c-{level}",
                recipient="+1",
                payload={},
                priority=level,
                delay=0.3,
            )
            for level in keys.levels.names
        }
    workers.start(provider.url, settings=settings)
    wait_until(lambda: delivered_ids(provider) == sent, timeout=30, message="delayed delivered")
    assert dead_letters(redis_client, keys) == []


# -- fixed per namespace ----------------------------------------------------------------


def test_levels_are_fixed_once_a_namespace_is_used(
    settings: Settings, redis_client: redis.Redis
) -> None:
    with SyncProducer(settings.replace(priorities=SEED_000)) as producer:
        producer.send(tenant="a", conversation="c", recipient="+1", payload={}, priority="otp")
    with (
        SyncProducer(settings) as producer,
        pytest.raises(ConfigurationError, match="created with priority levels") as raised,
    ):
        producer.send(tenant="a", conversation="c", recipient="+1", payload={})
    assert SEED_000 in str(raised.value) and "RELAYQ_PRIORITIES" in str(raised.value)


def test_a_namespace_from_before_levels_keeps_the_default_levels(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    # What an older relayq recorded: partitions only; its streams are high/normal/low.
    redis_client.hset(keys.meta, "partitions", settings.partitions)
    with (
        SyncProducer(settings.replace(priorities=SEED_000)) as producer,
        pytest.raises(ConfigurationError, match="'high,normal,low'"),
    ):
        producer.send(tenant="a", conversation="c", recipient="+1", payload={}, priority="otp")
    assert redis_client.hget(keys.meta, "priorities") == b"high,normal,low"


def test_send_refuses_an_unknown_level_and_writes_nothing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    with SyncProducer(settings) as producer, pytest.raises(ValidationError) as raised:
        producer.send(tenant="a", conversation="c", recipient="+1", payload={}, priority=10)
    assert "levels are high, normal, low" in str(raised.value)
    assert redis_client.keys("*:0}*") == [] and redis_client.keys("*}:normal") == []


# -- the CLI ----------------------------------------------------------------------------


def test_cli_pauses_a_level_by_number_and_names_a_mismatch(
    settings: Settings, redis_client: redis.Redis
) -> None:
    custom = settings.replace(priorities=SEED_000)
    with SyncProducer(custom) as producer:
        producer.send(tenant="a", conversation="c", recipient="+1", payload={}, priority=5)
    done = run_cli(custom, "pause", "--priority", "10")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "paused priority:otp"

    done = run_cli(settings, "pause", "--priority", "high")  # default levels in this shell
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "RELAYQ_PRIORITIES" in done.stderr
    assert Controls(redis_client, Keys.from_settings(custom)).paused() == ["priority:otp"]


# -- stream entries ---------------------------------------------------------------------


def test_an_entry_naming_another_level_than_its_stream_is_dead_lettered(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    provider = make_provider()
    with SyncProducer(settings) as producer:
        good = producer.send(tenant="acme", conversation="c", recipient="+1", payload={})
    partition = keys.partition_of("acme", "c")
    forged = Message(
        id="01J0000000000000000000000", tenant="acme", conversation="c", recipient="+1",
        priority="high", payload=b"{}", created_ms=1,
    )  # fmt: skip
    redis_client.xadd(keys.stream(partition, "low"), {ENTRY_FIELD: encode_message(forged)})
    workers.start(provider.url, settings=settings)
    wait_until(
        lambda: len(dead_letters(redis_client, keys)) == 1, timeout=30, message="dead-lettered"
    )
    wait_until(lambda: delivered_ids(provider) == {good}, timeout=30, message="good one delivered")
    letter = dead_letters(redis_client, keys)[0]
    assert letter["kind"] == b"poison"
    assert b"'high' found in the stream of level 'low'" in letter["error"]
