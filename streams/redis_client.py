"""Redis clients (redis.asyncio with hiredis) and the per-namespace agreement on partitions."""

from __future__ import annotations

import redis
from redis.asyncio import Redis

from streams.errors import ConfigurationError
from streams.keys import Keys
from streams.redis_server import ensure_embedded_redis
from streams.settings import Settings

__all__ = (
    "check_partitions",
    "check_partitions_sync",
    "create_client",
    "create_sync_client",
    "resolve_redis_url",
)


def resolve_redis_url(settings: Settings) -> str:
    """``settings.redis_url``, or the embedded server's URL (started on first use)."""
    if settings.redis_url:
        return settings.redis_url
    return ensure_embedded_redis(settings.data_path)


def create_client(settings: Settings, *, max_connections: int | None = None) -> Redis:
    """An asyncio client on raw bytes (no decoding), with keep-alive and health checks."""
    return Redis.from_url(
        resolve_redis_url(settings),
        decode_responses=False,
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
    )


def create_sync_client(settings: Settings) -> redis.Redis:
    """A blocking client, for the synchronous producer and the CLI."""
    return redis.Redis.from_url(
        resolve_redis_url(settings), decode_responses=False, socket_keepalive=True
    )


def _compare(keys: Keys, stored: bytes | None) -> None:
    if stored is not None and int(stored) != keys.partitions:
        raise ConfigurationError(
            f"namespace {keys.namespace!r} was created with {int(stored)} partitions but "
            f"these settings say {keys.partitions}; partitions are fixed per namespace "
            "(set RELAYQ_PARTITIONS to match, or use another RELAYQ_NAMESPACE)"
        )


async def check_partitions(client: Redis, keys: Keys) -> None:
    """Record the namespace's partition count, or fail if it differs from what is recorded."""
    await client.hsetnx(keys.meta, "partitions", keys.partitions)
    _compare(keys, await client.hget(keys.meta, "partitions"))


def check_partitions_sync(client: redis.Redis, keys: Keys) -> None:
    client.hsetnx(keys.meta, "partitions", keys.partitions)
    stored = client.hget(keys.meta, "partitions")
    _compare(keys, stored if isinstance(stored, bytes) else None)
