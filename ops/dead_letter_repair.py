"""Repairing the dead-letter streams: replay, delete and purge, each idempotent and logged.

``DeadLetterRepair(client, keys, admission_window=..., actor=...)`` serves the CLI
(``relayq dlq``) and an API server alike (asyncio client).

- **replay** puts a message back into its priority level and conversation through the
  admission rule of a send and deletes its dead-letter entry in the same script
  (``replay_dead_letters_8.lua``): a replay repeated, or resumed after it was killed
  half-way, finds the entries it already replayed gone and queues nothing twice. The
  message keeps its id; its attempts start over; its outcome record says "accepted".
  It lands behind its tenant's messages of that level already waiting, so after the
  messages its conversation accepted meanwhile.
- **delete** and **purge** XDEL / XTRIM MINID: deleting what is gone counts 0.
- Entries holding no decodable message (poison) are never replayed: each is refused with
  the reason, and left.

Every call logs one repair entry (``ops.repair_log``) with what it changed, 0 included.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing
from typing import Any

import msgspec
from redis.asyncio import Redis as AsyncRedis
from redis.commands.core import AsyncScript

from relayq.ops.dead_letter_inspection import (
    SCAN_CHUNK,
    DeadLetter,
    DeadLetterFilter,
    parse_dead_letter,
    parse_ref,
    scan_dead_letters,
)
from relayq.ops.repair_log import RepairEntry, log_repair_async
from relayq.streams.dead_letter_index import letter_members
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.outcome import OutcomeState, accepted_record
from relayq.streams.scripts import script_source

__all__ = ("DeadLetterRepair", "DeleteReport", "Progress", "Refusal", "ReplayReport")

Progress = Callable[[int], None]
"""Called with how many dead letters a repair has handled so far."""


class Refusal(msgspec.Struct, frozen=True):
    """A dead letter a replay left where it is, and why."""

    id: str
    reason: str


class ReplayReport(msgspec.Struct, kw_only=True):
    replayed: int = 0
    """Messages queued again (their dead-letter entries deleted)."""
    gone: int = 0
    """Dead letters named or scanned that were gone by then (already replayed, deleted)."""
    refused: list[Refusal] = []
    """Dead letters left in place (poison entries, ...)."""

    @property
    def handled(self) -> int:
        return self.replayed + self.gone + len(self.refused)

    def absorb(self, other: ReplayReport) -> None:
        self.replayed += other.replayed
        self.gone += other.gone
        self.refused.extend(other.refused)


class DeleteReport(msgspec.Struct, kw_only=True):
    deleted: int = 0
    gone: int = 0


def _scope_of_ids(refs: Sequence[str]) -> str:
    shown = ",".join(refs[:5])
    return f"ids={shown}" + (f" (+{len(refs) - 5} more)" if len(refs) > 5 else "")


class DeadLetterRepair:
    """The repairs of one namespace's dead letters, through ``client``."""

    def __init__(
        self,
        client: AsyncRedis,
        keys: Keys,
        *,
        admission_window: int,
        actor: str,
        records: bool = True,
    ) -> None:
        """``admission_window``: the unread window of a stream (``Settings.read_count``);
        ``actor``: who repairs, for the repair log (``cli_actor()``, an API key's name);
        ``records``: a replayed message's record becomes "accepted" (``True``, as
        ``Settings.outcome_records``) or is deleted."""
        self.client = client
        self.keys = keys
        self.admission_window = admission_window
        self.actor = actor
        self.records = records
        self._replay: AsyncScript = client.register_script(script_source("replay_dead_letters_8"))
        self._trim: AsyncScript = client.register_script(script_source("trim_dead_letters_2"))

    # -- replay ---------------------------------------------------------------------------

    async def replay_ids(
        self, refs: Sequence[str], progress: Progress | None = None
    ) -> ReplayReport:
        """Replay the dead letters ``refs`` name (``<partition>-<entry id>``), in chunks."""
        report = ReplayReport()
        try:
            for start in range(0, len(refs), SCAN_CHUNK):
                chunk = refs[start : start + SCAN_CHUNK]
                letters = await self._read(chunk)
                report.gone += len(chunk) - len(letters)
                report.absorb(await self.replay_chunk(letters))
                if progress is not None:
                    progress(report.handled)
        finally:
            await self._log("dlq.replay", _scope_of_ids(refs), report.replayed)
        return report

    async def replay_matching(
        self, chosen: DeadLetterFilter, progress: Progress | None = None
    ) -> ReplayReport:
        """Replay every dead letter ``chosen`` takes (all of them for an empty filter),
        ``SCAN_CHUNK`` per script call; a poison entry is refused, never replayed."""
        report = ReplayReport()
        batch: list[DeadLetter] = []
        try:
            async with aclosing(scan_dead_letters(self.client, self.keys, chosen)) as letters:
                async for letter in letters:
                    batch.append(letter)
                    if len(batch) == SCAN_CHUNK:
                        report.absorb(await self.replay_chunk(batch))
                        batch.clear()
                        if progress is not None:
                            progress(report.handled)
            report.absorb(await self.replay_chunk(batch))
            if progress is not None:
                progress(report.handled)
        finally:
            await self._log("dlq.replay", chosen.describe(), report.replayed)
        return report

    async def replay_chunk(self, letters: Iterable[DeadLetter]) -> ReplayReport:
        """Replay ``letters`` (one script call per partition and level; not logged: the
        calls above log once for all their chunks)."""
        report = ReplayReport()
        groups: dict[tuple[int, str], list[tuple[DeadLetter, Message]]] = defaultdict(list)
        for letter in letters:
            reason = self._refusal(letter)
            if reason is not None or letter.message is None:
                report.refused.append(Refusal(letter.ref, reason or "no message"))
            else:
                groups[(letter.partition, letter.message.priority)].append((letter, letter.message))
        now_ms = time.time_ns() // 1_000_000
        for (partition, level), members in groups.items():
            results = await self._replay_group(partition, level, members, now_ms)
            for (letter, _message), result in zip(members, results, strict=True):
                self._count(report, letter, int(result))
        return report

    def _refusal(self, letter: DeadLetter) -> str | None:
        message = letter.message
        if message is None:
            return "poison entry: it holds no decodable message, so it cannot be replayed"
        if message.priority not in self.keys.levels.names:
            return f"priority level {message.priority!r} is not one of the namespace's"
        if self.keys.partition_of(message.tenant, message.conversation) != letter.partition:
            return "its conversation belongs to another partition than its dead-letter stream"
        return None

    @staticmethod
    def _count(report: ReplayReport, letter: DeadLetter, result: int) -> None:
        if result == 1:
            report.replayed += 1
        elif result == 0:
            report.gone += 1
        else:
            report.refused.append(Refusal(letter.ref, "poison entry: no message field"))

    async def _replay_group(
        self,
        partition: int,
        level: str,
        members: Sequence[tuple[DeadLetter, Message]],
        now_ms: int,
    ) -> list[Any]:
        keys = self.keys
        args: list[Any] = [keys.waiting_prefix(partition, level), self.admission_window]
        for letter, message in members:
            record = (
                accepted_record(message, at_ms=now_ms, partition=partition) if self.records else b""
            )
            args += (letter.dlq_id, message.id, message.tenant, record)
        reply: Any = await self._replay(
            keys=(
                keys.dead_letter(partition),
                keys.outcomes(partition),
                keys.outcome_index(partition, OutcomeState.DEAD_LETTERED),
                keys.stream(partition, level),
                keys.unread(partition, level),
                keys.ring(partition, level),
                keys.dead_letter_index(partition),
                keys.outcome_lookup(partition),
            ),
            args=args,
        )
        return list(reply)

    async def _read(self, refs: Sequence[str]) -> list[DeadLetter]:
        """The dead letters of ``refs`` still present (one pipelined XRANGE each)."""
        where = [parse_ref(ref, self.keys) for ref in refs]
        async with self.client.pipeline(transaction=False) as pipe:
            for partition, dlq_id in where:
                pipe.xrange(self.keys.dead_letter(partition), dlq_id, dlq_id)
            replies: list[Any] = await pipe.execute()
        return [
            parse_dead_letter(partition, reply[0][0], reply[0][1])
            for (partition, _), reply in zip(where, replies, strict=True)
            if reply
        ]

    # -- delete, purge --------------------------------------------------------------------

    async def delete_ids(self, refs: Sequence[str]) -> DeleteReport:
        """Delete the dead letters ``refs`` name (and their tenant index members); those
        already gone count as ``gone``."""
        deleted = 0
        try:
            deleted = await self._xdel(await self._read(list(dict.fromkeys(refs))))
        finally:
            await self._log("dlq.delete", _scope_of_ids(refs), deleted)
        return DeleteReport(deleted=deleted, gone=len(set(refs)) - deleted)

    async def purge(self, chosen: DeadLetterFilter) -> int:
        """Delete the dead letters ``chosen`` takes (it must bound the time:
        ``until_ms``); how many were deleted. Without a tenant, conversation or kind this
        is one exact XTRIM MINID per partition; otherwise a scan, XDEL per chunk."""
        if chosen.until_ms is None:
            raise ValueError("purge needs an upper time bound (--older-than)")
        deleted = 0
        try:
            if msgspec.structs.replace(chosen, until_ms=None) == DeadLetterFilter():
                deleted = await self._trim_before(chosen.until_ms)
            else:
                deleted = await self._delete_matching(chosen)
        finally:
            await self._log("dlq.purge", chosen.describe(), deleted)
        return deleted

    async def _trim_before(self, until_ms: int) -> int:
        deleted = 0
        for partition in range(self.keys.partitions):
            where = (self.keys.dead_letter(partition), self.keys.dead_letter_index(partition))
            deleted += int(await self._trim(keys=where, args=(until_ms,)))
        return deleted

    async def _delete_matching(self, chosen: DeadLetterFilter) -> int:
        deleted = 0
        batch: list[DeadLetter] = []
        async with aclosing(scan_dead_letters(self.client, self.keys, chosen)) as letters:
            async for letter in letters:
                batch.append(letter)
                if len(batch) == SCAN_CHUNK:
                    deleted += await self._xdel(batch)
                    batch.clear()
        return deleted + await self._xdel(batch)

    async def _xdel(self, letters: Sequence[DeadLetter]) -> int:
        """XDEL ``letters`` and ZREM their members of the tenant index; how many went."""
        if not letters:
            return 0
        deletions: list[int] = []
        async with self.client.pipeline(transaction=False) as pipe:
            for letter in letters:
                deletions.append(len(pipe))
                pipe.xdel(self.keys.dead_letter(letter.partition), letter.dlq_id)
                tenant = letter.message.tenant if letter.message is not None else None
                members = letter_members(tenant, letter.kind, letter.dlq_id)
                pipe.zrem(self.keys.dead_letter_index(letter.partition), *members)
            replies = await pipe.execute()
        return sum(int(replies[position]) for position in deletions)

    async def _log(self, action: str, scope: str, count: int) -> None:
        entry = RepairEntry(actor=self.actor, action=action, scope=scope, count=count)
        await log_repair_async(self.client, self.keys, entry)
