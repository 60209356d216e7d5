"""The Redis command that enqueues one prepared message, for sync and async pipelines alike.

A plain message is one XADD. A message with a dedup key or a due time goes through
``enqueue_with_dedup_or_delay_4.lua`` so the dedup check and the write are one atomic step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from relayq.producers.send_request import PreparedMessage
from relayq.streams.codec import ENTRY_FIELD, encode_message
from relayq.streams.keys import Keys

__all__ = ("EnqueueCommand", "enqueue_command", "parse_reply")


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueCommand:
    message_id: str
    uses_script: bool
    keys: tuple[str, ...]
    args: tuple[Any, ...]


def enqueue_command(keys: Keys, prepared: PreparedMessage, dedup_window_ms: int) -> EnqueueCommand:
    message = prepared.message
    partition = keys.partition_of(message.tenant, message.conversation)
    stream = keys.stream(partition, message.priority)
    blob = encode_message(message)
    if message.dedup_key is None and prepared.due_ms == 0:
        return EnqueueCommand(message.id, False, (stream,), ("*", ENTRY_FIELD, blob))
    dedup_key = keys.dedup(message.tenant, message.conversation, message.dedup_key or "")
    script_keys = (stream, dedup_key, keys.delayed(partition), keys.delayed_data(partition))
    window = dedup_window_ms if message.dedup_key is not None else 0
    args = (message.id, blob, window, prepared.due_ms, message.priority)
    return EnqueueCommand(message.id, True, script_keys, args)


def parse_reply(command: EnqueueCommand, reply: Any) -> tuple[str, bool]:
    """(message id, duplicate?) from the reply to the command."""
    if not command.uses_script:
        return command.message_id, False
    message_id, duplicate = reply
    text = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
    return text, bool(int(duplicate))
