"""``relayq clean``, ``empty`` and ``trim``: the repairs that delete, each logged
(``ops.repair_log``) with its exact count, also when it is 0."""

from __future__ import annotations

import argparse

from redis.asyncio import Redis

from relayq.ops.cli_errors import usage_error
from relayq.ops.command_output import log_cli_repair, print_json, print_table, table
from relayq.ops.command_session import run_work
from relayq.ops.durations import format_age
from relayq.ops.namespace_cleaning import CleanResult, clean_namespace
from relayq.ops.stream_trimming import TrimResult, trim_streams
from relayq.ops.waiting_removal import WaitingRemoval, remove_waiting
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("run_clean", "run_empty", "run_trim")


def run_clean(settings: Settings, args: argparse.Namespace) -> int:
    both = not (args.delivered or args.dead_lettered)
    delivered, dead = args.delivered or both, args.dead_lettered or both
    older_than_ms = round(args.older_than * 1000)

    async def work(client: Redis, keys: Keys) -> CleanResult:
        result = await clean_namespace(
            client, keys, older_than_ms=older_than_ms, delivered=delivered, dead_lettered=dead
        )
        kinds = "+".join(k for k, on in (("delivered", delivered), ("dead_lettered", dead)) if on)
        scope = f"{kinds} older_than={format_age(older_than_ms)}"
        await log_cli_repair(client, keys, "clean", scope, result.total)
        return result

    result = run_work(settings, work)
    if args.json:
        print_json(result)
        return 0
    made = table(f"clean: older than {format_age(older_than_ms)}", "what", ">deleted")
    if delivered:
        made.add_row("delivered outcome records", f"{result.delivered_records:,}")
    if dead:
        made.add_row("dead-lettered outcome records", f"{result.dead_lettered_records:,}")
        made.add_row("dead-letter entries", f"{result.dead_letter_entries:,}")
    print_table(made)
    return 0


def _level(settings: Settings, priority: str | None) -> str | None:
    if priority is None:
        return None
    try:
        return settings.priority_levels.resolve(priority)
    except ValidationError as exc:
        raise ValueError(f"--priority {priority!r}: {exc}") from None


def run_empty(settings: Settings, args: argparse.Namespace) -> int:
    level = _level(settings, args.priority)
    tenant = None if args.all else args.tenant
    scope = ("all" if tenant is None else f"tenant={tenant}") + (
        f" priority={level}" if level else ""
    )

    async def work(client: Redis, keys: Keys) -> WaitingRemoval:
        removal = await remove_waiting(
            client, keys, tenant=tenant, priority=level, dry_run=not args.yes
        )
        if args.yes:
            await log_cli_repair(client, keys, "empty", scope, removal.total)
        return removal

    removal = run_work(settings, work)
    if args.json:
        print_json(removal)
    else:
        _print_removal(removal, scope)
    if not args.yes:
        return usage_error(
            f"--yes is required to remove them ({removal.total:,} waiting messages, {scope}); "
            "nothing was removed"
        )
    return 0


def _print_removal(removal: WaitingRemoval, scope: str) -> None:
    verb = "would remove" if removal.dry_run else "removed"
    made = table(
        f"empty {scope}: {verb}", "priority", "tenant", ">from lists", ">from streams", ">total"
    )
    for row in removal.rows:
        made.add_row(
            row.priority, row.tenant, f"{row.from_lists:,}", f"{row.from_streams:,}",
            f"{row.total:,}",
        )  # fmt: skip
    made.add_row("all", "all", "", "", f"{removal.total:,}", style="bold")
    note = "" if removal.dry_run else f"outcome records deleted: {removal.records_deleted:,}"
    print_table(made, note)


def run_trim(settings: Settings, args: argparse.Namespace) -> int:
    async def work(client: Redis, keys: Keys) -> TrimResult:
        result = await trim_streams(client, keys)
        await log_cli_repair(client, keys, "trim", "all streams", result.total)
        return result

    result = run_work(settings, work)
    if args.json:
        print_json(result)
        return 0
    made = table("trim: acknowledged entries deleted", ">partition", "priority", ">trimmed")
    for stream in result.streams:
        made.add_row(str(stream.partition), stream.priority, f"{stream.trimmed:,}")
    made.add_row("all", "all", f"{result.total:,}", style="bold")
    print_table(made, "kept: every pending and unread entry")
    return 0
