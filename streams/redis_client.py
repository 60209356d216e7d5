"""Redis clients (redis.asyncio with hiredis) and the per-namespace agreement on partitions."""

from __future__ import annotations

import redis
from redis.asyncio import Redis

from streams.errors import ConfigurationError
from streams.keys import Keys
from streams.redis_server import ensure_embedded_redis
from streams.settings import Settings

__all__ = (
    "REDIS_UNAVAILABLE",
    "check_partitions",
    "check_partitions_sync",
    "create_client",
    "create_sync_client",
    "resolve_redis_url",
)

REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
"""What a Redis call raises when Redis cannot be reached in time: transient for a worker."""


def resolve_redis_url(settings: Settings) -> str:
    """``settings.redis_url``, or the embedded server's URL (started on first use)."""
    if settings.redis_url:
        return settings.redis_url
    return ensure_embedded_redis(settings.data_path)


def _tcp_options(url: str) -> dict[str, bool]:
    """TCP keep-alive for TCP URLs; unix-socket connections take no such option."""
    return {} if url.startswith("unix://") else {"socket_keepalive": True}


def create_client(settings: Settings, *, max_connections: int | None = None) -> Redis:
    """An asyncio client on raw bytes (no decoding), with keep-alive and health checks."""
    url = resolve_redis_url(settings)
    return Redis.from_url(
        url,
        decode_responses=False,
        health_check_interval=30,
        max_connections=max_connections,
        **_tcp_options(url),
    )


def create_sync_client(settings: Settings) -> redis.Redis:
    """A blocking client, for the synchronous producer and the CLI."""
    url = resolve_redis_url(settings)
    return redis.Redis.from_url(url, decode_responses=False, **_tcp_options(url))


def _compare(keys: Keys, stored: bytes | str | None) -> None:
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
