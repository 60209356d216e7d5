"""The workers alive now: those whose heartbeat in ``ns:workers`` has not expired by
Redis's clock (consumers/ownership.py writes it every tick, expiring a lease TTL later)."""

from __future__ import annotations

from redis.asyncio import Redis

from relayq.streams.keys import Keys
from relayq.streams.stream_groups import as_text

__all__ = ("live_workers", "redis_now_ms")


async def redis_now_ms(client: Redis) -> int:
    """Redis's clock (TIME) in Unix ms: the clock heartbeats are scored with."""
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def live_workers(client: Redis, keys: Keys) -> set[str]:
    """Ids (consumer names) of the workers whose heartbeat has not expired."""
    now_ms = await redis_now_ms(client)
    members: list[bytes] = await client.zrangebyscore(  # type: ignore[assignment]
        keys.workers, f"({now_ms}", "+inf"
    )
    return {as_text(member) for member in members}
