"""What ``relayq message show`` and ``relayq events`` print: a readable view on a terminal,
or JSON (``--json``: one document, or one per line for events)."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
from rich.markup import escape
from rich.table import Table

from relayq.ops.attempt_rows import attempt_rows
from relayq.ops.cli_errors import CommandError
from relayq.ops.command_output import console
from relayq.ops.message_lookup import MessageStatus, check_message_id, find_message
from relayq.ops.running_redis import running_redis
from relayq.producers.event_reader import read_events_sync
from relayq.streams.keys import Keys
from relayq.streams.namespace_shape import compare_namespace_sync
from relayq.streams.outcome import OutcomeRecord
from relayq.streams.outcome_events import START, OutcomeEvent
from relayq.streams.redis_client import (
    create_client,
    create_sync_client,
    redis_address,
    redis_errors,
)
from relayq.streams.settings import Settings

__all__ = ("print_events", "show_message", "when")


def when(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def show_message(settings: Settings, message_id: str, *, as_json: bool) -> int:
    check_message_id(message_id)  # before anything starts: a typo is a usage error
    settings = running_redis(settings)
    keys = Keys.from_settings(settings)
    sync_client = create_sync_client(settings)
    try:
        with redis_errors(redis_address(sync_client)):
            compare_namespace_sync(sync_client, keys)
            status = asyncio.run(_find(settings, keys, message_id))
    finally:
        sync_client.close()
    if status is None:
        raise CommandError(
            f"no message {message_id} in namespace {keys.namespace!r}: never sent here, sent "
            "with RELAYQ_OUTCOME_RECORDS off, or finished longer ago than its record is kept"
        )
    if as_json:
        print(msgspec.json.encode(status).decode())
    else:
        _print_status(status)
    return 0


async def _find(settings: Settings, keys: Keys, message_id: str) -> MessageStatus | None:
    client = create_client(settings)
    try:
        return await find_message(client, keys, message_id)
    finally:
        await client.aclose()


def _print_status(status: MessageStatus) -> None:
    record = status.record
    table = Table(title=f"message {status.message_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = {
        "state": f"{status.state}: {status.detail}",
        "tenant": record.tenant,
        "conversation": record.conversation,
        "priority": record.priority,
        "partition": str(status.partition),
        "created": when(record.created_ms),
        "since": when(record.at_ms),
        "worker": record.worker or "-",
        "attempts": str(record.attempts),
        "provider message id": record.provider_message_id or "-",
        "error": record.error or "-",
        "dead-letter entry": record.dlq_id or "-",
    }
    for field, value in rows.items():
        table.add_row(field, escape(value))  # tenant names and errors are not markup
    console().print(table)
    _print_attempts(record)


def _print_attempts(record: OutcomeRecord) -> None:
    attempts = attempt_rows(record)
    if not attempts:
        return
    table = Table(title="attempts")
    for column in ("attempt", "time", "outcome", "error or detail", "worker"):
        table.add_column(column)
    for row in attempts:
        number = str(row.attempt) if row.counted else f"{row.attempt} (not counted)"
        table.add_row(
            number, when(row.at_ms), row.outcome, escape(row.detail), escape(row.worker or "-")
        )
    console().print(table)


def print_events(
    settings: Settings, *, after: str | None, follow: bool, limit: int | None, as_json: bool
) -> int:
    settings = running_redis(settings)
    keys = Keys.from_settings(settings)
    client = create_sync_client(settings)
    block_ms = max(1, min(1000, round(settings.redis_timeout * 500)))
    start = after if after is not None else (None if follow else START)
    shown = 0
    try:
        with redis_errors(redis_address(client)):
            compare_namespace_sync(client, keys)
            for event in read_events_sync(
                client, keys, after=start, follow=follow, block_ms=block_ms
            ):
                _print_event(event, as_json)
                shown += 1
                if limit is not None and shown >= limit:
                    break
    except KeyboardInterrupt:
        pass  # --follow ends with Ctrl-C: the events shown are the output
    finally:
        client.close()
    return 0


def _print_event(event: OutcomeEvent, as_json: bool) -> None:
    if as_json:
        print(msgspec.json.encode(event).decode(), flush=True)
        return
    record = event.record
    outcome = record.provider_message_id or record.error or ""
    print(
        f"{when(record.at_ms)}  {event.state:<13} {event.message_id}  "
        f"{record.tenant}/{record.conversation}  {outcome}",
        flush=True,
    )
