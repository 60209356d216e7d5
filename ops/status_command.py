"""``relayq status``: exact counts per priority level and tenant (``ops.counts``), as a
table or as JSON (``--json``), read-only."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import msgspec
from rich.console import Console
from rich.table import Table

from relayq.ops.counts import NamespaceCounts, read_counts
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

__all__ = ("run_status",)

_COLUMNS = ("waiting", "in_flight", "retrying", "delayed", "delivered", "dead_lettered")


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    settings = running_redis(settings)
    keys = Keys.from_settings(settings)
    sync_client = create_sync_client(settings)
    try:
        with redis_errors(redis_address(sync_client)):
            compare_namespace_sync(sync_client, keys)
            counts = asyncio.run(_read(settings, keys))
    finally:
        sync_client.close()
    if args.tenant is not None:
        counts.rows = [row for row in counts.rows if row.tenant == args.tenant]
    if args.json:
        print(msgspec.json.encode(counts).decode())
    else:
        _print_table(counts)
    return 0


async def _read(settings: Settings, keys: Keys) -> NamespaceCounts:
    client = create_client(settings)
    try:
        return await read_counts(client, keys)
    finally:
        await client.aclose()


def _age(oldest_ms: int | None, now_ms: int) -> str:
    if oldest_ms is None:
        return "-"
    seconds = max(0, now_ms - oldest_ms) / 1000
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _print_table(counts: NamespaceCounts) -> None:
    table = Table(title=f"relayq namespace {counts.namespace!r}")
    table.add_column("priority")
    table.add_column("tenant")
    for column in _COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("oldest waiting", justify="right")
    table.add_column("delivered/s (1 min)", justify="right")
    for row in counts.rows:
        values = [f"{getattr(row, column):,}" for column in _COLUMNS]
        age = _age(row.oldest_waiting_ms, counts.at_ms)
        table.add_row(row.priority, row.tenant, *values, age, f"{row.delivered_per_second:,.1f}")
    totals = [f"{counts.total(column):,}" for column in _COLUMNS]
    rate = sum(row.delivered_per_second for row in counts.rows)
    table.add_row("all", "all", *totals, "", f"{rate:,.1f}", style="bold")
    # Piped or captured, rich would wrap the table at 80 columns, breaking the headers.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table)
    console.print(
        f"dead-letter entries: {counts.dead_letter_entries:,}"
        + (f"; unreadable entries: {counts.unreadable:,}" if counts.unreadable else "")
        + f"  (read {time.strftime('%H:%M:%S', time.localtime(counts.at_ms / 1000))})"
    )
