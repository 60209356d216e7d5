"""How a ``relayq`` operator command reaches Redis: an already running Redis
(``running_redis``), the namespace's recorded shape checked (nothing recorded), then one
asyncio client for the work — the same read-model functions an HTTP API calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

from relayq.ops.running_redis import running_redis
from relayq.streams.keys import Keys
from relayq.streams.namespace_shape import compare_namespace_sync
from relayq.streams.redis_client import (
    create_client,
    create_sync_client,
    redis_address,
    redis_errors,
)
from relayq.streams.settings import Settings

__all__ = ("Work", "run_work")

T = TypeVar("T")
Work = Callable[[Redis, Keys], Awaitable[T]]


def run_work(settings: Settings, work: Work[T], *, check_shape: bool = True) -> T:
    """``work(client, keys)`` on the namespace's Redis; Redis and shape failures raise the
    errors the CLI reports in one line (RedisUnavailableError, ConfigurationError).
    ``check_shape=False`` leaves the shape to ``work`` (``health`` reports it)."""
    settings = running_redis(settings)
    keys = Keys.from_settings(settings)
    sync_client = create_sync_client(settings)
    try:
        with redis_errors(redis_address(sync_client)):
            if check_shape:
                compare_namespace_sync(sync_client, keys)
            return asyncio.run(_run(settings, keys, work))
    finally:
        sync_client.close()


async def _run(settings: Settings, keys: Keys, work: Work[T]) -> T:
    client = create_client(settings)
    try:
        return await work(client, keys)
    finally:
        await client.aclose()
