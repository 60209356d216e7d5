"""The Redis commands that enqueue prepared messages, for sync and async pipelines alike.

A message with a dedup key or a delay goes through ``enqueue_8.lua``: the dedup check, the
delay and the admission (into its stream, or behind what its tenant already has waiting:
``_admit.lua``) are one atomic step. ``send_many`` gathers its plain messages (neither) of
one partition and priority level into runs, each enqueued by one ``enqueue_many_4.lua``
call under the same admission rule (see ``plan_calls``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from relayq.producers.send_request import PreparedMessage
from relayq.streams.codec import encode_message
from relayq.streams.keys import Keys
from relayq.streams.outcome import accepted_record
from relayq.streams.settings import Settings

__all__ = (
    "EnqueueCall",
    "EnqueueCommand",
    "EnqueueOptions",
    "enqueue_command",
    "parse_reply",
    "plan_calls",
)


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """What a producer's settings say about every enqueue."""

    dedup_window_ms: int
    admission_window: int
    """Most unread entries a stream takes before messages wait in their tenant's list
    (the producer's ``read_count``)."""
    records: bool
    """Whether each message gets its accepted/delayed outcome record."""

    @classmethod
    def from_settings(cls, settings: Settings) -> EnqueueOptions:
        return cls(
            round(settings.dedup_window * 1000), settings.read_count, settings.outcome_records
        )


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueCommand:
    message_id: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    run_keys: tuple[str, str, str, str, str] | None = None
    """For a plain message: its level's stream, unread counter, ring, the partition's
    outcome records and the level's waiting-list prefix (what ``enqueue_many_4.lua``
    takes); None when it has a dedup key or a delay."""


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueCall:
    """One script call of a batch: ``many`` is True for an ``enqueue_many_4.lua`` run."""

    indexes: tuple[int, ...]
    """The batch items it enqueues."""
    message_ids: tuple[str, ...]
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    many: bool


def enqueue_command(
    keys: Keys, prepared: PreparedMessage, options: EnqueueOptions
) -> EnqueueCommand:
    message = prepared.message
    tenant, level = message.tenant, message.priority
    partition = keys.partition_of(tenant, message.conversation)
    stream, unread = keys.stream(partition, level), keys.unread(partition, level)
    ring = keys.ring(partition, level)
    plain = message.dedup_key is None and not prepared.due_ms
    dedup_key = "" if plain else keys.dedup(tenant, message.conversation, message.dedup_key or "")
    script_keys = (
        stream,
        dedup_key or stream,  # unused without a dedup key; any key of the slot will do
        keys.delayed(partition),
        keys.delayed_data(partition),
        unread,
        ring,
        keys.waiting(partition, level, tenant),
        keys.outcomes(partition),
    )
    window = options.dedup_window_ms if message.dedup_key is not None else 0
    blob = encode_message(message)
    record = accepted_record(message, due_ms=prepared.due_ms) if options.records else b""
    args = (
        message.id,
        blob,
        window,
        prepared.due_ms,
        level,
        tenant,
        options.admission_window,
        record,
    )
    prefix = keys.waiting_prefix(partition, level)
    run_keys = (stream, unread, ring, keys.outcomes(partition), prefix) if plain else None
    return EnqueueCommand(message.id, script_keys, args, run_keys)


def plan_calls(commands: Sequence[tuple[int, EnqueueCommand]]) -> list[EnqueueCall]:
    """The script calls that enqueue ``commands`` (index, command), in an order that keeps
    every conversation's FIFO: plain messages gather into one run per (partition, level)
    until a message with a dedup key or a delay comes, which flushes every run first."""
    calls: list[EnqueueCall] = []
    runs: dict[tuple[str, str, str, str, str], list[tuple[int, EnqueueCommand]]] = {}
    for index, command in commands:
        if command.run_keys is None:
            calls.extend(_run_calls(runs))
            runs.clear()
            calls.append(
                EnqueueCall((index,), (command.message_id,), command.keys, command.args, False)
            )
        else:
            runs.setdefault(command.run_keys, []).append((index, command))
    calls.extend(_run_calls(runs))
    return calls


def _run_calls(
    runs: dict[tuple[str, str, str, str, str], list[tuple[int, EnqueueCommand]]],
) -> list[EnqueueCall]:
    calls = []
    for (*run_keys, prefix), members in runs.items():
        admission_window = members[0][1].args[6]
        args: list[Any] = [prefix, admission_window]
        for _, command in members:
            # tenant, encoded message, message id, outcome record
            args += (command.args[5], command.args[1], command.message_id, command.args[7])
        indexes = tuple(index for index, _ in members)
        ids = tuple(command.message_id for _, command in members)
        calls.append(EnqueueCall(indexes, ids, tuple(run_keys), tuple(args), True))
    return calls


def parse_reply(reply: Any) -> tuple[str, bool]:
    """(message id, duplicate?) from ``enqueue_8.lua``'s reply."""
    message_id, duplicate = reply
    text = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
    return text, bool(int(duplicate))
