"""The Redis command that enqueues one prepared message, for sync and async pipelines alike.

Every message goes through ``enqueue_7.lua``: the dedup check, the delay and the admission
(into its stream, or behind what its tenant already has waiting: ``_admit.lua``) are one
atomic step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from relayq.producers.send_request import PreparedMessage
from relayq.streams.codec import encode_message
from relayq.streams.keys import Keys

__all__ = ("EnqueueCommand", "enqueue_command", "parse_reply")


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueCommand:
    message_id: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]


def enqueue_command(
    keys: Keys, prepared: PreparedMessage, dedup_window_ms: int, admission_window: int
) -> EnqueueCommand:
    """``admission_window``: most unread entries a stream takes before messages wait in
    their tenant's list (the producer's ``read_count``)."""
    message = prepared.message
    tenant, level = message.tenant, message.priority
    partition = keys.partition_of(tenant, message.conversation)
    dedup_key = keys.dedup(tenant, message.conversation, message.dedup_key or "")
    script_keys = (
        keys.stream(partition, level),
        dedup_key,
        keys.delayed(partition),
        keys.delayed_data(partition),
        keys.unread(partition, level),
        keys.ring(partition, level),
        keys.waiting(partition, level, tenant),
    )
    window = dedup_window_ms if message.dedup_key is not None else 0
    blob = encode_message(message)
    args = (message.id, blob, window, prepared.due_ms, level, tenant, admission_window)
    return EnqueueCommand(message.id, script_keys, args)


def parse_reply(reply: Any) -> tuple[str, bool]:
    """(message id, duplicate?) from the script's reply."""
    message_id, duplicate = reply
    text = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
    return text, bool(int(duplicate))
