"""Script calls pipelined by ``streams.script_pipeline``: one round trip with no
``SCRIPT EXISTS`` (redis-py's pipeline sends one per execute), and after a SCRIPT FLUSH
each call still runs exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from relayq.streams.redis_server import RedisServer
from relayq.streams.script_pipeline import run_script_calls

_COUNT = "-- KEYS[1] a counter; ARGV[1] by how much; returns the new value\n" \
         "return redis.call('INCRBY', KEYS[1], ARGV[1])"  # fmt: skip


def _script_exists_calls(client: redis.Redis) -> int:
    stats: Any = client.info("commandstats")
    return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))


def _run(url: str, flush_first: bool) -> list[Any]:
    async def scenario() -> list[Any]:
        client = Redis.from_url(url)
        try:
            script = client.register_script(_COUNT)
            await run_script_calls(client, [(script, ("a",), (1,))])  # loaded now
            if flush_first:
                await client.script_flush()
            calls = [(script, ("a",), (1,)), (script, ("b",), (5,)), (script, ("a",), (2,))]
            return await run_script_calls(client, calls)
        finally:
            await client.aclose()

    return asyncio.run(scenario())


def test_calls_run_in_one_round_trip_without_script_exists(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    before = _script_exists_calls(redis_client)
    assert _run(redis_server.url, flush_first=False) == [2, 5, 4]
    assert _script_exists_calls(redis_client) == before


def test_after_a_script_flush_every_call_runs_once(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    assert _run(redis_server.url, flush_first=True) == [2, 5, 4]
    assert redis_client.mget("a", "b") == [b"4", b"5"]


def test_an_error_reply_is_raised(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        client = Redis.from_url(redis_server.url)
        try:
            script = client.register_script(_COUNT)
            await run_script_calls(client, [(script, ("a",), ("not a number",))])
        finally:
            await client.aclose()

    with pytest.raises(redis.ResponseError):
        asyncio.run(scenario())
