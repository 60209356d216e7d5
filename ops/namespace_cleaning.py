"""``clean``: delete what is older than a cutoff — delivered and dead-lettered outcome
records (with their retention index entries) and dead-letter entries — with exact counts.

Records go through ``clean_outcomes_3.lua`` (index entry and record together, as the
workers' own retention does), in bounded batches per partition; dead letters through
XTRIM MINID (exact: ids are the times they were dead-lettered). Repeating a clean with the
same cutoff deletes nothing more: idempotent.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from relayq.ops.live_workers import redis_now_ms
from relayq.streams.keys import Keys
from relayq.streams.outcome import OutcomeState
from relayq.streams.scripts import script_source

__all__ = ("CleanResult", "clean_namespace")

_BATCH = 1000


class CleanResult(msgspec.Struct, kw_only=True):
    cutoff_ms: int
    """Everything that reached its state before this (Unix ms, Redis's clock) went."""
    delivered_records: int = 0
    dead_lettered_records: int = 0
    dead_letter_entries: int = 0

    @property
    def total(self) -> int:
        return self.delivered_records + self.dead_lettered_records + self.dead_letter_entries


async def clean_namespace(
    client: Redis, keys: Keys, *, older_than_ms: int, delivered: bool, dead_lettered: bool
) -> CleanResult:
    """Delete the chosen kinds older than ``older_than_ms`` in every partition."""
    result = CleanResult(cutoff_ms=await redis_now_ms(client) - older_than_ms)
    script = client.register_script(script_source("clean_outcomes_3"))
    trim = client.register_script(script_source("trim_dead_letters_2"))
    for partition in range(keys.partitions):
        records = (keys.outcomes(partition), keys.outcome_lookup(partition))
        if delivered:
            index = keys.outcome_index(partition, OutcomeState.DELIVERED)
            result.delivered_records += await _clean_index(script, index, records, result)
        if dead_lettered:
            index = keys.outcome_index(partition, OutcomeState.DEAD_LETTERED)
            result.dead_lettered_records += await _clean_index(script, index, records, result)
            where = (keys.dead_letter(partition), keys.dead_letter_index(partition))
            trimmed = await trim(keys=where, args=(result.cutoff_ms,))
            result.dead_letter_entries += int(trimmed)
    return result


async def _clean_index(
    script: AsyncScript, index: str, records: tuple[str, str], result: CleanResult
) -> int:
    """Records of one index deleted (``records``: the records hash and its lookup index),
    batch after batch until a batch comes back short."""
    deleted = 0
    while True:
        removed, gone = await script(keys=(index, *records), args=(result.cutoff_ms, _BATCH))
        deleted += int(gone)
        if int(removed) < _BATCH:
            return deleted
