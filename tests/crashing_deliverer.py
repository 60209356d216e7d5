"""A deliverer that kills its own worker process (kill -9) on a message whose payload asks
for it, as a process that runs out of memory or hits a crashing native library would.

``{"crash": true}`` dies before sending. ``{"crash_after_send": true}`` sends first (the
sink records it: the provider's success) and dies before the acknowledgement, on its first
try only;
with ``"record": true`` the message's delivered outcome record is written in between
(the window relayq's pre-send check covers: a record written, the entry still pending).

Every attempt, crashing or not, is first recorded in the Redis list ``<ns>:tried`` (as the
sink records deliveries), so a test sees what each short-lived worker tried. Loaded by a
worker as ``RELAYQ_DELIVERER=tests.crashing_deliverer:build``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import redis

from relayq.consumers.simple_deliverers import SinkDeliverer
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.outcome import delivered_record
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings

__all__ = (
    "CRASH_AFTER_RECORD",
    "CRASH_AFTER_SEND",
    "CRASH_PAYLOAD",
    "UNUSED_URL",
    "WORKER_ENV",
    "CrashingDeliverer",
    "build",
    "sunk_ids",
    "tried_key",
)

WORKER_ENV = {
    "RELAYQ_DELIVERER": "tests.crashing_deliverer:build",
    "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
}
"""What a worker's environment needs to load this deliverer from the repository."""
UNUSED_URL = "http://127.0.0.1:9/unused"
"""The webhook URL such workers are given (never called)."""

CRASH_PAYLOAD = {"crash": True}
CRASH_AFTER_SEND = {"crash_after_send": True}
CRASH_AFTER_RECORD = {"crash_after_send": True, "record": True}


def sunk_ids(client: redis.Redis, keys: Keys) -> list[str]:
    """The message ids the sink recorded, in order."""
    records: Any = client.lrange(keys.sink, 0, -1)
    return [record.decode().rsplit("\x1f", 1)[1] for record in records]


def tried_key(namespace: str) -> str:
    return f"{namespace}:tried"


class CrashingDeliverer:
    def __init__(self, settings: Settings) -> None:
        self._client = create_client(settings)
        self._keys = Keys.from_settings(settings)
        self._tried = tried_key(settings.namespace)
        self._sink = SinkDeliverer(self._client, settings.namespace)

    async def deliver(self, message: Message) -> DeliveryResult:
        first_try = await self._client.lpos(self._tried, message.id) is None
        await self._client.rpush(self._tried, message.id)
        payload = message.payload_json()
        if payload == CRASH_PAYLOAD:
            os.kill(os.getpid(), signal.SIGKILL)
        result = await self._sink.deliver(message)
        if payload in (CRASH_AFTER_SEND, CRASH_AFTER_RECORD) and first_try:
            if payload == CRASH_AFTER_RECORD:
                await self._write_delivered_record(message)
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    async def _write_delivered_record(self, message: Message) -> None:
        partition = self._keys.partition_of(message.tenant, message.conversation)
        now_ms = time.time_ns() // 1_000_000
        record = delivered_record(message, partition, b"0-0", "crashed", 1, "first", now_ms)
        await self._client.hset(self._keys.outcomes(partition), message.id, record)

    async def aclose(self) -> None:
        await self._client.aclose()


def build(settings: Settings) -> CrashingDeliverer:
    return CrashingDeliverer(settings)
