"""What the operator commands print: a rich table (the default) or one JSON document
(``--json``), and the repair log entry every repair writes."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from relayq.ops.repair_log import RepairEntry, cli_actor, log_repair_async
from relayq.streams.keys import Keys

__all__ = ("console", "log_cli_repair", "print_json", "print_table", "table")


def console() -> Console:
    """A console for stdout; piped or captured, wide enough that tables do not wrap."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_json(document: Any) -> None:
    """``document`` (msgspec Structs, dicts, lists) as one line of JSON on stdout."""
    print(msgspec.json.encode(document).decode())


def table(title: str, *columns: str) -> Table:
    """A table whose columns after the first ones holding text are right-aligned when
    their name starts with ``>`` (``">pending"``)."""
    made = Table(title=title)
    for column in columns:
        numeric = column.startswith(">")
        made.add_column(column.lstrip(">"), justify="right" if numeric else "left")
    return made


def print_table(made: Table, *notes: str) -> None:
    out = console()
    out.print(made)
    for note in notes:
        out.print(note)


async def log_cli_repair(client: Redis, keys: Keys, action: str, scope: str, count: int) -> None:
    """Log a repair run from the command line (``ops.repair_log``), also when it changed
    nothing."""
    entry = RepairEntry(actor=cli_actor(), action=action, scope=scope, count=count)
    await log_repair_async(client, keys, entry)
