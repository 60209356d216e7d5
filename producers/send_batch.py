"""The per-item half of ``send_many``, shared by both producers: each request becomes its
enqueue command, or, if anything goes wrong preparing it (invalid, unencodable, ...), its
result is that error and the rest of the batch is still sent; each reply of the pipeline
becomes its item's result."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from relayq.producers.enqueue_command import (
    EnqueueCall,
    EnqueueCommand,
    EnqueueOptions,
    enqueue_command,
    parse_reply,
)
from relayq.producers.send_request import SendRequest, SendResult, prepare
from relayq.streams.batch import BATCH_KEEP_MS, TENANT_FIELD
from relayq.streams.errors import RedisUnavailableError, RelayqError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = (
    "PendingCommand",
    "record_batch",
    "finish_batch",
    "prepare_batch",
    "record_replies",
)

_NAMED_TENANTS = 10
PendingCommand = tuple[int, EnqueueCommand]
"""An item's index in the batch and the command that enqueues it."""


def prepare_batch(
    requests: Iterable[SendRequest],
    *,
    settings: Settings,
    keys: Keys,
    options: EnqueueOptions,
    trace: bool,
    batch: str | None,
) -> tuple[list[SendResult | None], list[PendingCommand]]:
    """One slot per request, in order: the error of an item that failed to prepare, None
    for one whose command is among the pending commands."""
    results: list[SendResult | None] = []
    pending: list[PendingCommand] = []
    for request in requests:
        try:
            prepared = prepare(request, settings, trace=trace, batch=batch)
            command = enqueue_command(keys, prepared, options)
        except Exception as exc:  # whatever it is, it is this item's alone
            results.append(SendResult(None, exc))
            continue
        pending.append((len(results), command))
        results.append(None)
    return results, pending


def record_replies(
    calls: Sequence[EnqueueCall], replies: Sequence[Any], results: list[SendResult | None]
) -> None:
    """Fill the results of the items ``calls`` enqueued from the pipeline's ``replies`` (one
    per call, an exception for a call Redis refused: every item of that call failed)."""
    for call, reply in zip(calls, replies, strict=True):
        if isinstance(reply, Exception):
            for index in call.indexes:
                results[index] = SendResult(None, RedisUnavailableError(str(reply)))
        elif call.many:
            for index, message_id in zip(call.indexes, call.message_ids, strict=True):
                results[index] = SendResult(message_id, None, False)
        else:
            message_id, duplicate = parse_reply(reply)
            results[call.indexes[0]] = SendResult(message_id, None, duplicate)


def record_batch(
    pipe: Any,
    key: str,
    created_ms: int,
    results: Sequence[SendResult],
    pending: Sequence[PendingCommand],
) -> None:
    """Queue on ``pipe`` the commands that add this call's items to the batch record
    (``streams.batch``): counts added up, the start time kept from the first call."""
    duplicates = sum(1 for r in results if r.duplicate)
    accepted = sum(1 for r in results if r.ok and not r.duplicate)
    counts = {
        "requested": len(results),
        "accepted": accepted,
        "refused": len(results) - accepted - duplicates,
        "duplicates": duplicates,
    }
    for name, value in counts.items():
        pipe.hincrby(key, name, value)
    pipe.hsetnx(key, "created_ms", created_ms)
    tenants = sorted({str(command.args[5]) for _, command in pending})[:_NAMED_TENANTS]
    if tenants:
        pipe.hset(key, mapping=dict.fromkeys((TENANT_FIELD + t for t in tenants), 1))
    pipe.pexpire(key, BATCH_KEEP_MS)


def finish_batch(results: list[SendResult | None]) -> list[SendResult]:
    """The results to return: a slot no reply filled was not sent."""
    return [r if r is not None else SendResult(None, RelayqError("not sent")) for r in results]
