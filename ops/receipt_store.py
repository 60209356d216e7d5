"""Receipts applied to the messages' outcome records (``apply_receipt_2.lua``).

A message id does not say its partition: one pipelined round trip asks every partition's
records hash whether it holds each receipt's message (HEXISTS, O(1) each), then one more
runs the script once per receipt found, in its partition. Each call is atomic (the kept
receipt is read and replaced in one step, so concurrent callbacks cannot move a status
back), and calls commute (ranks decide, not arrival), so they go out as independent calls
(``run_script_calls``). A receipt of a message with no record (never sent through relayq,
records off, or its record expired) writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from relayq.streams.keys import Keys
from relayq.streams.receipts import RANKED_STATUSES, Receipt
from relayq.streams.script_pipeline import run_script_calls
from relayq.streams.scripts import script_source

__all__ = ("ReceiptTally", "apply_receipts")

_SOURCE = script_source("apply_receipt_2")
_RANKED = " ".join(RANKED_STATUSES)
_APPLIED, _NOT_FURTHER = 1, 0


class ReceiptTally(msgspec.Struct, kw_only=True):
    """What one callback changed (the receipts endpoints' answer)."""

    applied: int = 0
    """Receipts kept (each published one event)."""
    unchanged: int = 0
    """Receipts not further than the one kept (duplicates, late arrivals): no change."""
    ignored: int = 0
    """Statuses of no known message (or no receipt at all): nothing written."""


async def apply_receipts(
    client: Redis, keys: Keys, receipts: Sequence[Receipt], events_keep: int
) -> ReceiptTally:
    """Apply ``receipts`` (any order gives the same records); what happened to them."""
    found = await _partitions(client, keys, receipts)
    tally = ReceiptTally(ignored=len(receipts) - len(found))
    if not found:
        return tally
    script = client.register_script(_SOURCE)
    replies = await run_script_calls(
        client,
        [
            (script, (keys.outcomes(p), keys.events(p)), _arguments(receipt, events_keep))
            for receipt, p in found
        ],
    )
    for reply in replies:
        tally.applied += int(reply) == _APPLIED
        tally.unchanged += int(reply) == _NOT_FURTHER
        tally.ignored += int(reply) < _NOT_FURTHER  # its record went meanwhile
    return tally


async def _partitions(
    client: Redis, keys: Keys, receipts: Sequence[Receipt]
) -> list[tuple[Receipt, int]]:
    """Each receipt whose message has a record, with the partition holding it."""
    if not receipts:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for receipt in receipts:
            for partition in range(keys.partitions):
                pipe.hexists(keys.outcomes(partition), receipt.message_id)
        held = await pipe.execute()
    found = []
    for n, receipt in enumerate(receipts):
        row = held[n * keys.partitions : (n + 1) * keys.partitions]
        if any(row):
            found.append((receipt, row.index(True)))
    return found


def _arguments(receipt: Receipt, events_keep: int) -> tuple[str, ...]:
    provider_id = msgspec.json.encode(receipt.provider_message_id).decode()
    error = msgspec.json.encode(receipt.error).decode() if receipt.error else ""
    return (
        receipt.message_id,
        receipt.status,
        _RANKED,
        str(receipt.at_ms),
        provider_id if receipt.provider_message_id else "",
        error,
        str(events_keep),
    )
