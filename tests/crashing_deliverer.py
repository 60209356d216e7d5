"""A deliverer that kills its own worker process (kill -9) on a message whose payload asks
for it, as a process that runs out of memory or hits a crashing native library would.

Every attempt, crashing or not, is first recorded in the Redis list ``<ns>:tried`` (as the
sink records deliveries), so a test sees what each short-lived worker tried. Loaded by a
worker as ``RELAYQ_DELIVERER=tests.crashing_deliverer:build``.
"""

from __future__ import annotations

import os
import signal

from relayq.consumers.simple_deliverers import SinkDeliverer
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.message import Message
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings

__all__ = ("CRASH_PAYLOAD", "CrashingDeliverer", "build", "tried_key")

CRASH_PAYLOAD = {"crash": True}


def tried_key(namespace: str) -> str:
    return f"{namespace}:tried"


class CrashingDeliverer:
    def __init__(self, settings: Settings) -> None:
        self._client = create_client(settings)
        self._tried = tried_key(settings.namespace)
        self._sink = SinkDeliverer(self._client, settings.namespace)

    async def deliver(self, message: Message) -> DeliveryResult:
        await self._client.rpush(self._tried, message.id)
        if message.payload_json() == CRASH_PAYLOAD:
            os.kill(os.getpid(), signal.SIGKILL)
        return await self._sink.deliver(message)

    async def aclose(self) -> None:
        await self._client.aclose()


def build(settings: Settings) -> CrashingDeliverer:
    return CrashingDeliverer(settings)
