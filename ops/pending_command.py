"""``relayq pending``: pending entries per partition and per consumer, the entries that
pass the filters, and ``--release`` (``ops.pending_release``)."""

from __future__ import annotations

import argparse

import msgspec
from redis.asyncio import Redis

from relayq.ops.command_output import log_cli_repair, print_json, print_table, table
from relayq.ops.command_session import run_work
from relayq.ops.durations import format_age
from relayq.ops.pending_entries import PendingFilter, PendingReport, read_pending
from relayq.ops.pending_release import ReleaseResult, release_pending
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("run_pending",)


class _Outcome(msgspec.Struct, kw_only=True):
    report: PendingReport
    release: ReleaseResult | None


def _filter(settings: Settings, args: argparse.Namespace) -> PendingFilter:
    if args.partition is not None and not 0 <= args.partition < settings.partitions:
        raise ValueError(
            f"--partition {args.partition}: the namespace has partitions "
            f"0 to {settings.partitions - 1}"
        )
    return PendingFilter(
        partition=args.partition,
        consumer=args.consumer,
        tenant=args.tenant,
        min_idle_ms=round(args.min_idle * 1000),
        min_deliveries=args.min_deliveries,
        limit=args.limit,
    )


def _scope(chosen: PendingFilter) -> str:
    parts = [f"{name}={value}" for name, value in msgspec.structs.asdict(chosen).items() if value]
    return " ".join(parts) or "all"


def run_pending(settings: Settings, args: argparse.Namespace) -> int:
    chosen = _filter(settings, args)

    async def work(client: Redis, keys: Keys) -> _Outcome:
        report = await read_pending(client, keys, chosen)
        if not args.release:
            return _Outcome(report=report, release=None)
        released = await release_pending(client, keys, report.entries)
        await log_cli_repair(client, keys, "release", _scope(chosen), released.released)
        return _Outcome(report=report, release=released)

    outcome = run_work(settings, work)
    if args.json:
        print_json(outcome if args.release else outcome.report)
    else:
        _print(outcome)
    return 0


def _print(outcome: _Outcome) -> None:
    report = outcome.report
    partitions = table(f"pending in {report.namespace!r}", ">partition", ">pending", "lease")
    for row in report.partitions:
        if row.pending or row.leased:
            lease = "free" if not row.leased else f"held ({format_age(row.lease_ms_left)} left)"
            partitions.add_row(str(row.partition), f"{row.pending:,}", lease)
    consumers = table("per consumer", "consumer", ">pending", "live worker")
    for consumer in report.consumers:
        consumers.add_row(consumer.consumer, f"{consumer.pending:,}", _yes(consumer.live))
    entries = table(
        "entries" + (" (more match: raise --limit)" if report.truncated else ""),
        ">partition", "priority", "entry", "message", "tenant", "consumer", ">idle",
        ">deliveries", "releasable",
    )  # fmt: skip
    for e in report.entries:
        entries.add_row(
            str(e.partition), e.priority, e.entry_id, e.message_id or "-", e.tenant or "-",
            e.consumer, format_age(e.idle_ms), str(e.deliveries), _yes(not e.partition_leased),
        )  # fmt: skip
    notes = [f"total pending: {report.total:,}"]
    if outcome.release is not None:
        notes.append(_release_note(outcome.release))
    if not report.total:
        print_table(partitions, *notes)
        return
    print_table(partitions)
    print_table(consumers)
    print_table(entries, *notes)


def _release_note(result: ReleaseResult) -> str:
    note = f"released {result.released:,}"
    if result.held:
        held = ", ".join(str(p) for p in result.held_partitions)
        note += (
            f"; left {result.held:,} alone: partitions {held} are leased, a worker may be "
            "sending them (a stopped worker's lease runs out within the lease TTL)"
        )
    return note


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
