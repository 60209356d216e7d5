"""``relayq health``: exit 0 when the namespace can deliver, 1 when a check fails (the
output names it); for probes (``ops.health_check``)."""

from __future__ import annotations

import argparse

from redis.asyncio import Redis

from relayq.ops.command_output import print_json, print_table, table
from relayq.ops.command_session import run_work
from relayq.ops.health_check import Health, check_health, unreachable
from relayq.streams.errors import RedisUnavailableError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("run_health",)

_UNHEALTHY = 1


def run_health(settings: Settings, args: argparse.Namespace) -> int:
    limit = args.max_oldest_waiting
    limit_ms = None if limit is None else round(limit * 1000)

    async def work(client: Redis, keys: Keys) -> Health:
        return await check_health(client, keys, max_oldest_waiting_ms=limit_ms)

    try:
        health = run_work(settings, work, check_shape=False)
    except RedisUnavailableError as exc:
        health = unreachable(str(exc))
    if args.json:
        print_json(health)
    else:
        made = table("relayq health", "check", "ok", "detail")
        for check in health.checks:
            made.add_row(check.name, "ok" if check.ok else "FAILED", check.detail)
        failed = ", ".join(health.failed)
        print_table(made, "healthy" if health.healthy else f"unhealthy: {failed}")
    return 0 if health.healthy else _UNHEALTHY
