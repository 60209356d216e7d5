"""``pending --release``: hand pending entries back to the group, only where no worker can
be sending them.

The rule: an entry is released only while its partition's lease does not exist, checked
in the same script that releases it (``release_pending_2.lua``). A worker sends a
partition's messages only while its own view of the lease is valid (the fence,
``PartitionState.may_send``), and that view ends no later than the lease key in Redis; so
with the key gone (run out, or given back) no worker is in the middle of sending any of
them, and a worker that takes the lease afterwards sees the released state. Entries of a
leased partition — a live owner's, or a killed worker's whose lease has not run out yet —
are counted as ``held`` and left alone.

A released entry is re-owned by ``RELEASED_CONSUMER`` (XCLAIM JUSTID: its delivery count
and attempts record are kept) and stays pending, so the next worker to take the partition
reclaims it with every other pending entry, in id order: each conversation keeps its
order (re-adding it to the stream's tail would put it behind later messages of its
conversation). The consumer it came from then holds nothing and can be pruned.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec
from redis.asyncio import Redis

from relayq.ops.pending_entries import PendingEntry
from relayq.streams.keys import GROUP, Keys
from relayq.streams.scripts import script_source

__all__ = ("RELEASED_CONSUMER", "ReleaseResult", "release_pending")

RELEASED_CONSUMER = "relayq:released"
"""The consumer released entries wait under until the partition's next owner reclaims them."""

_LEASED = -1


class ReleaseResult(msgspec.Struct, kw_only=True):
    released: int
    """Entries handed back now (0 when a repeated release found nothing left to do)."""
    held: int
    """Chosen entries left alone: their partition is leased, a worker may be sending them."""
    held_partitions: list[int]


async def release_pending(client: Redis, keys: Keys, chosen: list[PendingEntry]) -> ReleaseResult:
    """Release ``chosen`` (from ``read_pending``) where the rule allows; see the module."""
    script = client.register_script(script_source("release_pending_2"))
    by_stream: defaultdict[tuple[int, str], list[str]] = defaultdict(list)
    for entry in chosen:
        if entry.consumer != RELEASED_CONSUMER:
            by_stream[(entry.partition, entry.priority)].append(entry.entry_id)
    released, held, held_partitions = 0, 0, set()
    for (partition, priority), ids in sorted(by_stream.items()):
        stream_keys = (keys.stream(partition, priority), keys.lease(partition))
        reply = int(await script(keys=stream_keys, args=(GROUP, RELEASED_CONSUMER, *ids)))
        if reply == _LEASED:
            held += len(ids)
            held_partitions.add(partition)
        else:
            released += reply
    return ReleaseResult(released=released, held=held, held_partitions=sorted(held_partitions))
