"""``empty``: drop waiting messages (accepted, not yet read by a worker) of one tenant or
of all, per priority level, reporting exactly what went.

One ``empty_waiting.lua`` call per partition removes, atomically, the chosen tenants'
waiting lists and ring entries and their entries in the streams' unread windows (ids above
the group's last-delivered id; the unread counters drop by as many), and the outcome
records of those messages. Pending (in-flight) entries are never touched, nor delayed
messages (not yet due: they are not waiting). A second run finds nothing: idempotent.
A dry run counts the same things and changes nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import script_source
from relayq.streams.stream_groups import as_text

__all__ = ("RemovedRow", "WaitingRemoval", "remove_waiting")


class RemovedRow(msgspec.Struct, kw_only=True):
    priority: str
    tenant: str
    from_lists: int = 0
    """Messages of the tenant's waiting lists."""
    from_streams: int = 0
    """Entries of the streams' unread windows."""

    @property
    def total(self) -> int:
        return self.from_lists + self.from_streams


class WaitingRemoval(msgspec.Struct, kw_only=True):
    tenant: str | None
    """The tenant emptied; None for every tenant."""
    priority: str | None
    """The level emptied; None for every level."""
    dry_run: bool
    rows: list[RemovedRow]
    """Per (level, tenant) with anything removed (or, dry, to remove), levels highest first."""
    records_deleted: int
    """Outcome records of the removed messages deleted with them."""

    @property
    def total(self) -> int:
        return sum(row.total for row in self.rows)


async def remove_waiting(
    client: Redis,
    keys: Keys,
    *,
    tenant: str | None,
    priority: str | None = None,
    dry_run: bool = False,
) -> WaitingRemoval:
    """Empty ``tenant``'s waiting messages (every tenant's with None) of ``priority`` (a
    level's name; every level with None) in every partition."""
    levels = keys.levels.names if priority is None else (priority,)
    script = client.register_script(script_source("empty_waiting"))
    rows: dict[tuple[str, str], RemovedRow] = {}
    records = 0
    for partition in range(keys.partitions):
        script_keys = [keys.outcomes(partition)]
        prefixes = []
        for level in levels:
            stream = keys.stream(partition, level)
            script_keys += (stream, keys.unread(partition, level), keys.ring(partition, level))
            prefixes.append(keys.waiting_prefix(partition, level))
        args = (GROUP, tenant or "", "1" if dry_run else "0", *prefixes)
        reply: list[Any] = await script(keys=script_keys, args=args)
        records += int(reply[0])
        _add_rows(rows, levels, reply[1:])
    order = {name: index for index, name in enumerate(keys.levels.names)}
    return WaitingRemoval(
        tenant=tenant,
        priority=priority,
        dry_run=dry_run,
        rows=sorted(rows.values(), key=lambda r: (order[r.priority], r.tenant)),
        records_deleted=records,
    )


def _add_rows(
    rows: dict[tuple[str, str], RemovedRow], levels: tuple[str, ...], flat: list[Any]
) -> None:
    """Add the script's (level index, tenant, from list, from stream) rows to ``rows``."""
    for i in range(0, len(flat), 4):
        level, tenant = levels[int(flat[i]) - 1], as_text(flat[i + 1])
        row = rows.setdefault((level, tenant), RemovedRow(priority=level, tenant=tenant))
        row.from_lists += int(flat[i + 2])
        row.from_streams += int(flat[i + 3])
