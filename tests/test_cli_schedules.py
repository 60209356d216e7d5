"""``relayq schedules`` refuses a schedule with no next time or a bad cron field before
writing anything (exit 2, naming the field), and lists schedules even when one stored
schedule's next time is out of any date's range."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from relayq.streams.keys import Keys
from relayq.streams.redis_server import free_port
from relayq.streams.settings import Settings
from tests.cli_runner import assert_one_line_error, clean_environment, relayq
from tests.support import run_cli

MESSAGE = ("--tenant", "acme", "--conversation", "c", "--recipient", "+1555")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (("--every", "1e12"), "invalid every: must be from 0.1s to 315360000s (3650 days)"),
        (("--every", "nan"), "invalid every: must be from 0.1s"),
        (
            ("--cron", "61 * * * *"),
            "the minute field '61' is out of range or malformed (allowed: 0-59)",
        ),
        (("--cron", "0 25 * * *"), "the hour field '25' is out of range"),
        (("--cron", "0 0 * 13 *"), "the month field '13' is out of range"),
        (("--cron", "0 0 30 2 *"), "'0 0 30 2 *' never occurs"),
        (("--cron", "0 0 *"), "is not a five-field cron expression"),
    ],
    ids=["every 1e12", "every nan", "minute 61", "hour 25", "month 13", "30 Feb", "3 fields"],
)
def test_a_schedule_without_a_next_time_is_refused_before_anything_is_written(
    settings: Settings, redis_client: redis.Redis, when: tuple[str, ...], expected: str
) -> None:
    done = run_cli(settings, "schedules", "add", "bad", *when, *MESSAGE)
    assert_one_line_error(done, 2, expected)
    assert redis_client.keys("*schedule*") == []
    listed = run_cli(settings, "schedules")
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")


def test_a_bad_schedule_is_a_usage_error_even_with_no_redis_to_reach(tmp_path: Path) -> None:
    env = clean_environment(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    for when in (("--every", "1e12"), ("--cron", "61 * * * *")):
        done = relayq(env, "schedules", "add", "bad", *when, *MESSAGE, cwd=tmp_path)
        assert_one_line_error(done, 2, f"invalid {when[0][2:]}")


def test_listing_survives_a_stored_schedule_whose_next_time_no_date_holds(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    for name in ("a-far", "b-near"):
        done = run_cli(settings, "schedules", "add", name, "--every", "60", *MESSAGE)
        assert done.returncode == 0, done.stderr
    partition = keys.partition_of("acme", "c")
    far = time.time_ns() // 1_000_000 + 10**15  # as `--every 1e12` stored it before the check
    redis_client.zadd(keys.schedule_due(partition), {"a-far": far})

    done = run_cli(settings, "schedules")
    assert done.returncode == 0, done.stderr
    far_line, near_line = done.stdout.splitlines()
    assert far_line.startswith("a-far\tevery 60s\tnext (out of range: ")
    assert near_line.startswith("b-near\tevery 60s\tnext 20")


def test_listing_survives_an_undecodable_stored_schedule_and_names_it(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    done = run_cli(settings, "schedules", "add", "good", "--every", "60", *MESSAGE)
    assert done.returncode == 0, done.stderr
    partition = keys.partition_of("acme", "c")
    redis_client.hset(keys.schedules(partition), "broken", b"\xc1 not msgpack")

    done = run_cli(settings, "schedules")
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == ["good"]
    assert "schedule_unreadable" in done.stderr and "broken" in done.stderr
