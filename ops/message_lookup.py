"""``message show ID``: where one message is now, from its outcome record.

Every message has a record from the moment it is accepted (``Settings.outcome_records``),
in its partition's ``{ns:P}:outcomes`` hash, overwritten as it moves: accepted or delayed
(by the producer's enqueue script), retrying (a failed or throttled attempt), delivered or
dead-lettered (in the script that finishes it). A message id does not say its partition,
so the lookup asks every partition's hash in one pipelined round trip: ``partitions``
HGETs, O(1) each — never a scan of a stream or a list, whatever the backlog.

In flight is not written per attempt (every message would pay a write): a record that says
accepted (or delayed or retrying and due) is looked up in its stream's pending entries —
one XPENDING and one XRANGE per pending entry of that one stream, bounded by what workers
hold (their read-ahead), not by the backlog. Found there, the message is in flight: the
consumer holding it is the worker, and its idle time says since when.

Finished records are kept for ``keep_delivered`` / ``keep_dead_lettered`` (time and count);
after that, and for messages sent with records off, the id is not found.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import redis.exceptions
from redis.asyncio import Redis

from relayq.streams.codec import readable_message
from relayq.streams.errors import ValidationError
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message_id import crockford_pattern, message_id_time_ms
from relayq.streams.outcome import OutcomeRecord, OutcomeState, decode_record
from relayq.streams.stream_groups import as_text

__all__ = ("MessageStatus", "check_message_id", "find_message")

_MESSAGE_ID = crockford_pattern(26)
_PENDING_BOUND = 100_000
"""Most pending entries of one stream looked through (workers hold at most their
read-ahead per partition)."""


class MessageStatus(msgspec.Struct, kw_only=True):
    message_id: str
    state: str
    """accepted (waiting), delayed, in_flight, retrying, delivered, dead_lettered."""
    partition: int
    record: OutcomeRecord
    """The record as stored, with its time and partition filled in."""
    worker_alive: bool | None = None
    """For in_flight: whether the worker sending it is registered as live (its heartbeat
    has not run out). A worker gone is replaced: the partition's next owner sends the
    message again."""
    detail: str = ""
    """One line for a person: what the state means for this message now."""


def check_message_id(message_id: str) -> str:
    """``message_id`` if it has the form of a relayq id, else a ValidationError."""
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValidationError(
            "message id",
            f"{message_id[:40]!r} is not a relayq id (26 characters, 0-9 and A-Z without "
            "I, L, O, U)",
        )
    return message_id


async def find_message(client: Redis, keys: Keys, message_id: str) -> MessageStatus | None:
    """The message's last known state, or None if no partition holds a record of it."""
    check_message_id(message_id)
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(keys.partitions):
            pipe.hget(keys.outcomes(partition), message_id)
        replies = await pipe.execute()
    for partition, blob in enumerate(replies):
        if blob is not None:
            return await _status(client, keys, message_id, partition, decode_record(blob))
    return None


async def _status(
    client: Redis, keys: Keys, message_id: str, partition: int, record: OutcomeRecord
) -> MessageStatus:
    created_ms = record.created_ms or message_id_time_ms(message_id)
    record = msgspec.structs.replace(
        record, partition=partition, created_ms=created_ms, at_ms=record.at_ms or created_ms
    )
    status = MessageStatus(
        message_id=message_id, state=record.state, partition=partition, record=record
    )
    if _may_be_pending(record, time.time_ns() // 1_000_000):
        holder = await _pending_holder(client, keys, partition, record.priority, message_id)
        if holder is not None:
            record = holder.record_of(record)
            status.state, status.record = record.state, record
    if record.state == OutcomeState.IN_FLIGHT and record.worker:
        status.worker_alive = await _worker_alive(client, keys, record.worker)
    status.detail = _detail(status, time.time_ns() // 1_000_000)
    return status


def _may_be_pending(record: OutcomeRecord, now_ms: int) -> bool:
    """Whether a worker may hold the message now: read, not finished, no backoff running."""
    if record.state == OutcomeState.ACCEPTED:
        return True
    if record.state == OutcomeState.DELAYED:
        return (record.due_ms or 0) <= now_ms
    return record.state == OutcomeState.RETRYING and (record.next_attempt_ms or 0) <= now_ms


class _Holder(msgspec.Struct, frozen=True):
    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int

    def record_of(self, record: OutcomeRecord) -> OutcomeRecord:
        return msgspec.structs.replace(
            record,
            state=OutcomeState.IN_FLIGHT.value,
            at_ms=time.time_ns() // 1_000_000 - self.idle_ms,
            entry_id=self.entry_id,
            worker=self.consumer,
        )


async def _pending_holder(
    client: Redis, keys: Keys, partition: int, priority: str, message_id: str
) -> _Holder | None:
    """The pending entry of ``message_id`` in its level's stream, if a worker holds it."""
    stream = keys.stream(partition, priority)
    try:
        pending: Any = await client.xpending_range(stream, GROUP, "-", "+", _PENDING_BOUND)
    except redis.exceptions.ResponseError:
        return None  # no stream or no group yet: nothing is pending
    async with client.pipeline(transaction=False) as pipe:
        for entry in pending:
            pipe.xrange(stream, min=entry["message_id"], max=entry["message_id"])
        found = await pipe.execute()
    for entry, entries in zip(pending, found, strict=True):
        if entries and _message_id_of(entries[0][1]) == message_id:
            return _Holder(
                entry_id=as_text(entry["message_id"]),
                consumer=as_text(entry["consumer"]),
                idle_ms=int(entry["time_since_delivered"]),
                deliveries=int(entry["times_delivered"]),
            )
    return None


def _message_id_of(fields: Any) -> str | None:
    message = readable_message(fields)
    return message.id if message is not None else None


async def _worker_alive(client: Redis, keys: Keys, worker: str) -> bool:
    async with client.pipeline(transaction=False) as pipe:
        pipe.zscore(keys.workers, worker)
        pipe.time()
        expiry, (seconds, micros) = await pipe.execute()
    return expiry is not None and expiry > seconds * 1000 + micros // 1000


def _detail(status: MessageStatus, now_ms: int) -> str:
    record = status.record
    state = record.state
    if state == OutcomeState.ACCEPTED:
        return f"waiting for its turn in {record.priority!r} (tenant {record.tenant!r})"
    if state == OutcomeState.DELAYED:
        due = record.due_ms or 0
        if due > now_ms:
            return f"delayed: due in {(due - now_ms) / 1000:.1f}s"
        return "was delayed; due now, waiting for its turn"
    if state == OutcomeState.IN_FLIGHT:
        owner = "live" if status.worker_alive else "gone: the next owner will send it again"
        return f"read by {record.worker} (worker {owner}): in its memory or being sent"
    if state == OutcomeState.RETRYING:
        wait = max(0, (record.next_attempt_ms or now_ms) - now_ms) / 1000
        return f"attempt failed ({record.kind}: {record.error}); next attempt in {wait:.1f}s"
    if state == OutcomeState.DELIVERED:
        provider = record.provider_message_id or "none given"
        return f"delivered after {record.attempts} attempt(s); provider id {provider}"
    return f"dead-lettered ({record.kind}): {record.error}; dead-letter entry {record.dlq_id}"
