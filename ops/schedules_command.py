"""``relayq schedules``: list, add and remove repeatable messages."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from typing import Any

from relayq.producers import Producer
from relayq.streams.errors import ValidationError
from relayq.streams.schedule import Schedule, check_cron, check_every
from relayq.streams.settings import Settings

__all__ = ("check_arguments", "run_schedules", "schedule_document")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a bad ``add`` (interval, cron, payload) before any Redis is looked for:
    a usage error stays one, whether Redis answers or not."""
    if args.action != "add":
        return
    if args.every is not None:
        check_every(args.every)
    if args.cron is not None:
        check_cron(args.cron)
    _payload(args.payload)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    async with Producer(settings) as producer:
        if args.action == "remove":
            removed = await producer.unschedule(args.name)
            if args.json:
                print(json.dumps({"name": args.name, "removed": removed}))
            else:
                print("removed" if removed else f"no schedule named {args.name!r}")
            return 0 if removed else 1
        if args.action == "add":
            await producer.schedule(
                args.name,
                every=args.every,
                cron=args.cron,
                tenant=args.tenant,
                conversation=args.conversation,
                recipient=args.recipient,
                sender=args.sender,
                payload=_payload(args.payload),
                priority=args.priority,
            )
        found = await producer.schedules()
        if args.json:
            print(json.dumps([schedule_document(schedule, due) for schedule, due in found]))
            return 0
        for schedule, due_ms in found:
            due = _due_text(due_ms)
            template = schedule.template
            sender = f" from {template.sender}" if template.sender is not None else ""
            print(
                f"{schedule.name}\t{schedule.describe()}\tnext {due}\t"
                f"{template.tenant}/{template.conversation} -> {template.recipient}{sender}"
            )
    return 0


def schedule_document(schedule: Schedule, due_ms: int | None) -> dict[str, Any]:
    """A schedule as JSON-ready data (the CLI's --json and the HTTP API)."""
    template = schedule.template
    return {
        "name": schedule.name,
        "every_ms": schedule.every_ms,
        "cron": schedule.cron,
        "next_due_ms": due_ms,
        "tenant": template.tenant,
        "conversation": template.conversation,
        "recipient": template.recipient,
        "sender": template.sender,
        "priority": template.priority,
        "payload": template.payload_json(),
    }


def _due_text(due_ms: int) -> str:
    """The due time in UTC, or the raw number when no date can hold it (a schedule stored
    before intervals were bounded): listing never fails on one bad schedule."""
    try:
        return dt.datetime.fromtimestamp(due_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"(out of range: {due_ms} ms; remove and add it again)"


def _payload(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("payload", f"is not JSON: {exc}") from None


def run_schedules(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))
