"""``relayq drain``: wait until nothing is waiting or in flight (retrying entries are in
flight too), reading the exact counts (``ops.counts``) twice a second; a progress bar on a
terminal. Exit 0 once drained, 1 when ``--timeout`` ran out first. Delayed messages (not
yet due) are not waited for. Changes nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import msgspec
from redis.asyncio import Redis
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from relayq.ops.command_output import console, print_json
from relayq.ops.command_session import run_work
from relayq.ops.counts import NamespaceCounts, read_counts
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("run_drain",)

_POLL_SECONDS = 0.5
_TIMED_OUT = 1


class _DrainResult(msgspec.Struct, kw_only=True):
    drained: bool
    remaining: int
    """Waiting + in flight + retrying when the command ended."""
    seconds: float


def _remaining(counts: NamespaceCounts) -> int:
    return sum(counts.total(field) for field in ("waiting", "in_flight", "retrying"))


def run_drain(settings: Settings, args: argparse.Namespace) -> int:
    timeout: float | None = args.timeout
    show_bar = sys.stdout.isatty() and not args.json

    async def work(client: Redis, keys: Keys) -> _DrainResult:
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        with Progress(
            TextColumn("draining"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console(), disable=not show_bar, transient=True,
        ) as progress:  # fmt: skip
            remaining = _remaining(await read_counts(client, keys))
            task = progress.add_task("drain", total=remaining or 1)
            total = remaining
            while remaining and (deadline is None or time.monotonic() < deadline):
                await asyncio.sleep(_POLL_SECONDS)
                remaining = _remaining(await read_counts(client, keys))
                total = max(total, remaining)
                progress.update(task, total=total, completed=total - remaining)
        seconds = round(time.monotonic() - started, 3)
        return _DrainResult(drained=remaining == 0, remaining=remaining, seconds=seconds)

    result = run_work(settings, work)
    if args.json:
        print_json(result)
    elif result.drained:
        print(f"drained in {result.seconds:.1f}s")
    else:
        left = f"{result.remaining:,} still waiting or in flight"
        print(f"not drained after {result.seconds:.1f}s: {left}")
    return 0 if result.drained else _TIMED_OUT
