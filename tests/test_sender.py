"""The optional ``sender`` of a message: every send path stores it in the Message a worker
decodes, schedules carry it to each firing; entries written before the field existed
still decode (without a sender), and workers not yet upgraded skip it."""

from __future__ import annotations

from typing import Any

import msgspec
import redis

from relayq.producers import Producer, SendRequest, SyncProducer
from relayq.streams.codec import ENTRY_FIELD, decode_entry
from relayq.streams.keys import Keys
from relayq.streams.message import Message, Priority
from relayq.streams.settings import Settings
from tests.support import run_cli

MESSAGE: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "c-1",
    "recipient": "+15550100",
    "payload": {"text": "hello"},
}


def _queued(client: redis.Redis, keys: Keys) -> dict[str, Message]:
    """Every message in every stream, decoded as a worker decodes it, by message id."""
    found: dict[str, Message] = {}
    for partition in range(keys.partitions):
        for stream in keys.streams(partition):
            entries: Any = client.xrange(stream)
            for _, fields in entries:
                message = decode_entry(fields)
                found[message.id] = message
    return found


async def test_every_send_path_stores_the_sender(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    async with Producer(settings) as producer:
        sent = {
            await producer.send(**MESSAGE, sender="wa-async"): "wa-async",
            await producer.send(**MESSAGE): None,
        }
        [result] = await producer.send_many([SendRequest(**MESSAGE, sender="wa-many")])
        assert result.message_id is not None
        sent[result.message_id] = "wa-many"
    with SyncProducer(settings) as sync_producer:
        sent[sync_producer.send(**MESSAGE, sender="wa-sync", dedup_key="d-1")] = "wa-sync"
        [result] = sync_producer.send_many([SendRequest(**MESSAGE, sender="wa-sync-many")])
        assert result.message_id is not None
        sent[result.message_id] = "wa-sync-many"

    queued = _queued(redis_client, keys)
    assert {mid: m.sender for mid, m in queued.items()} == sent
    assert {m.tenant for m in queued.values()} == {"acme"}


async def test_a_schedule_carries_the_sender_to_its_template(settings: Settings) -> None:
    async with Producer(settings) as producer:
        await producer.schedule("digest", every=60, **MESSAGE, sender="wa-1")
        [(schedule, _due)] = await producer.schedules()
    assert schedule.template.sender == "wa-1"
    assert schedule.message(now_ms=1).sender == "wa-1"  # each firing's message


def test_the_schedules_cli_adds_and_lists_the_sender(settings: Settings) -> None:
    done = run_cli(
        settings, "schedules", "add", "digest", "--every", "60", "--tenant", "acme",
        "--conversation", "c-1", "--recipient", "+1555", "--sender", "wa-1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "acme/c-1 -> +1555 from wa-1" in done.stdout


class _MessageBeforeSender(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    """``Message`` as it was before ``sender`` was appended: what old entries hold."""

    id: str
    tenant: str
    conversation: str
    recipient: str
    priority: Priority
    payload: bytes
    created_ms: int
    dedup_key: str | None = None
    not_before_ms: int | None = None
    metadata: dict[str, str] = {}
    trace: dict[str, str] = {}


def test_entries_without_a_sender_decode_and_old_readers_skip_it() -> None:
    old = _MessageBeforeSender(
        id="01J0000000000000000000000",
        tenant="acme",
        conversation="c-1",
        recipient="+15550100",
        priority=Priority.HIGH,
        payload=b"{}",
        created_ms=1_700_000_000_000,
        metadata={"order": "7"},
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    blob = msgspec.msgpack.encode(old)
    message = decode_entry({ENTRY_FIELD: blob})
    assert message.sender is None
    fields_added_since = {"sender": None, "max_attempts": None, "batch": None, "channel": None}
    assert msgspec.structs.asdict(message) == {**msgspec.structs.asdict(old), **fields_added_since}
    # And the other way round: a worker not yet upgraded ignores the trailing sender.
    with_sender = msgspec.structs.replace(message, sender="wa-1")
    assert (
        msgspec.msgpack.decode(msgspec.msgpack.encode(with_sender), type=_MessageBeforeSender)
        == old
    )
