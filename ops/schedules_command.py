"""``relayq schedules``: list, add and remove repeatable messages."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json

from relayq.producers import Producer
from relayq.streams.errors import ValidationError
from relayq.streams.settings import Settings

__all__ = ("run_schedules",)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    async with Producer(settings) as producer:
        if args.action == "remove":
            removed = await producer.unschedule(args.name)
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
        for schedule, due_ms in await producer.schedules():
            due = dt.datetime.fromtimestamp(due_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")
            template = schedule.template
            sender = f" from {template.sender}" if template.sender is not None else ""
            print(
                f"{schedule.name}\t{schedule.describe()}\tnext {due}\t"
                f"{template.tenant}/{template.conversation} -> {template.recipient}{sender}"
            )
    return 0


def _payload(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("payload", f"is not JSON: {exc}") from None


def run_schedules(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))
