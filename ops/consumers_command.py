"""``relayq consumers [list]`` and ``relayq consumers prune`` (``ops.consumer_pruning``)."""

from __future__ import annotations

import argparse

from redis.asyncio import Redis

from relayq.ops.command_output import log_cli_repair, print_json, print_table, table
from relayq.ops.command_session import run_work
from relayq.ops.consumer_pruning import (
    ConsumerInfo,
    PruneResult,
    list_consumers,
    prune_consumers,
)
from relayq.ops.durations import format_age
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("run_consumers",)


def run_consumers(settings: Settings, args: argparse.Namespace) -> int:
    as_json = getattr(args, "json", False)
    if args.action == "prune":
        result = _prune(settings, round(args.idle * 1000))
        if as_json:
            print_json(result)
        else:
            _print("pruned consumers", result.removed, f"kept: {result.kept:,}")
        return 0
    consumers = run_work(settings, list_consumers)
    if as_json:
        print_json(consumers)
    else:
        _print("consumers", consumers, f"total: {len(consumers):,}")
    return 0


def _prune(settings: Settings, min_idle_ms: int) -> PruneResult:
    async def work(client: Redis, keys: Keys) -> PruneResult:
        result = await prune_consumers(client, keys, min_idle_ms=min_idle_ms)
        scope = f"idle>={format_age(min_idle_ms)} pending=0 not-live"
        await log_cli_repair(client, keys, "prune", scope, len(result.removed))
        return result

    return run_work(settings, work)


def _print(title: str, consumers: list[ConsumerInfo], note: str) -> None:
    made = table(title, ">partition", "priority", "consumer", ">pending", ">idle", "live worker")
    for c in consumers:
        live = "yes" if c.live else "no"
        made.add_row(
            str(c.partition), c.priority, c.consumer, f"{c.pending:,}", format_age(c.idle_ms), live
        )
    print_table(made, note)
